# SIGSYS handler: void handler(int sig, siginfo_t *info, void *ucontext), SA_SIGINFO.
# Writes "<prefix><si_syscall><middle><thread name><suffix>" to fd 2 and exit_group(148).
# Only write(1), prctl(157) and exit_group(231) are made; every petasan filter allows them.
    .intel_syntax noprefix
    .text
    .globl handler
handler:
    mov r12d, dword ptr [rsi + 24]      # si_syscall (siginfo_t._sifields._sigsys._syscall)
    and rsp, -16
    sub rsp, 64                          # [rsp..rsp+31]: digits, [rsp+32..rsp+47]: thread name
    # write(2, prefix, prefix_len)
    lea rsi, [rip + prefix]
    mov edx, OFFSET prefix_len
    call emit
    # digits of r12d, right to left into [rsp+31] downwards
    lea rdi, [rsp + 32]
    mov eax, r12d
    mov ecx, 10
1:  xor edx, edx
    div ecx
    add dl, '0'
    dec rdi
    mov byte ptr [rdi], dl
    test eax, eax
    jnz 1b
    mov rsi, rdi
    lea rdx, [rsp + 32]
    sub rdx, rdi
    call emit
    lea rsi, [rip + middle]
    mov edx, OFFSET middle_len
    call emit
    # prctl(PR_GET_NAME=16, rsp+32): the thread's name (at most 16 bytes, NUL-terminated)
    mov eax, 157
    mov edi, 16
    lea rsi, [rsp + 32]
    mov qword ptr [rsi], 0
    mov qword ptr [rsi + 8], 0
    syscall
    lea rsi, [rsp + 32]
    xor edx, edx
2:  cmp byte ptr [rsi + rdx], 0
    je 3f
    inc edx
    cmp edx, 16
    jb 2b
3:  call emit
    lea rsi, [rip + suffix]
    mov edx, OFFSET suffix_len
    call emit
    mov eax, 231                         # exit_group(148): Firecracker's FcExitCode::BadSyscall
    mov edi, 148
    syscall
    hlt
# write(2, rsi, rdx)
emit:
    mov eax, 1
    mov edi, 2
    syscall
    ret
prefix: .ascii "petasan: seccomp: Shutting down VM after intercepting a bad syscall ("
    .set prefix_len, . - prefix
middle: .ascii ") on thread "
    .set middle_len, . - middle
suffix: .ascii "; exit code 148\n"
    .set suffix_len, . - suffix
