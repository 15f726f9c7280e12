/* counter-fill: the counter guest with a 64 MiB read-mostly working set (see counter.S, FILL_MIB): it writes
 * 64 MiB once, then reads it all again before each line. Needs at least 80 MiB of guest RAM. */
#define FILL_MIB 64
#include "counter.S"
