#!/usr/bin/env node
// The installed command. A committed, executable file: the compiled dist/ is rebuilt by `npm run build`
// and `npm test`, and a file tsc writes carries no execute bit.
import "../dist/src/cli/main.js";
