/*
 * Guest kit entry points.
 *
 *   _start       64-bit entry (ELF e_entry), smolvm's contract: long mode,
 *                paging on, rsi = guest-physical address of a Linux
 *                struct boot_params ("zero page").
 *   pvh_start32  32-bit PVH entry (XEN_ELFNOTE_PHYS32_ENTRY), used by QEMU
 *                microvm and other PVH loaders: protected mode, paging off,
 *                ebx = guest-physical address of struct hvm_start_info.
 *
 * Both load the kit's own GDT (0x10 = 64-bit code, 0x18 = flat data), switch
 * to the kit's own stack in .bss and call
 *     guest_boot(uint32_t kind, uint64_t info_paddr)   (rt/boot.c)
 * which never returns.
 */

#define BOOT_KIND_LINUX 0
#define BOOT_KIND_PVH   1

#define SEL_CODE64 0x10
#define SEL_DATA   0x18

#define CR0_PE      (1 << 0)
#define CR0_PG      (1 << 31)
#define CR4_PAE     (1 << 5)
#define CR4_OSFXSR  (1 << 9)
#define CR4_OSXMMEX (1 << 10)
#define MSR_EFER    0xc0000080
#define EFER_LME    (1 << 8)

#define PTE_P   0x001
#define PTE_RW  0x002
#define PTE_PS  0x080

#define STACK_SIZE 65536

/* ---- PVH ELF note ------------------------------------------------------ */

    .section .note.Xen, "a", @note
    .balign 4
    .long 4                 /* namesz: "Xen\0" */
    .long 4                 /* descsz: 32-bit physical entry address */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long pvh_start32

/* ---- 64-bit entry (smolvm, Linux zero page in rsi) --------------------- */

    .section .text.boot, "ax", @progbits
    .code64
    .globl _start
    .type _start, @function
_start:
    cli
    cld
    mov %rsi, %r15                  /* zero page */

    /* Zero .bss before anything lives there (no stack in use yet). */
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    rep stosb

    lgdt gdt_ptr(%rip)
    lea stack_top(%rip), %rsp
    pushq $SEL_CODE64
    lea 1f(%rip), %rax
    pushq %rax
    lretq                           /* reload CS from our GDT */
1:
    mov $BOOT_KIND_LINUX, %edi
    mov %r15, %rsi
    jmp enter_c
    .size _start, . - _start

/* ---- 32-bit PVH entry (hvm_start_info in ebx) -------------------------- */

    .code32
    .globl pvh_start32
    .type pvh_start32, @function
pvh_start32:
    cli
    cld
    mov %ebx, %esi                  /* hvm_start_info, survives to C */

    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    /* PML4[0] -> PDPT; PDPT[0..3] -> 4 page directories of 2 MiB pages. */
    mov $pgt_pdpt, %eax
    or $(PTE_P | PTE_RW), %eax
    mov %eax, pgt_pml4

    mov $pgt_pd, %eax
    or $(PTE_P | PTE_RW), %eax
    mov $pgt_pdpt, %edi
    mov $4, %ecx
2:  mov %eax, (%edi)
    add $4096, %eax
    add $8, %edi
    loop 2b

    mov $(PTE_P | PTE_RW | PTE_PS), %eax
    mov $pgt_pd, %edi
    mov $2048, %ecx                 /* 2048 x 2 MiB = 4 GiB */
3:  mov %eax, (%edi)                /* high dword already zero */
    add $0x200000, %eax
    add $8, %edi
    loop 3b

    lgdt gdt_ptr
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss

    mov %cr4, %eax
    or $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEX), %eax
    mov %eax, %cr4
    mov $pgt_pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PG | CR0_PE), %eax
    mov %eax, %cr0
    ljmp $SEL_CODE64, $pvh_start64
    .size pvh_start32, . - pvh_start32

    .code64
pvh_start64:
    mov $BOOT_KIND_PVH, %edi
    mov %esi, %esi                  /* zero-extend the start_info address */

/* Common tail: edi = kind, rsi = boot info address. */
enter_c:
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %fs
    mov %eax, %gs
    mov %eax, %ss
    lea stack_top(%rip), %rsp
    xor %ebp, %ebp
    call guest_boot
4:  cli
    hlt
    jmp 4b

/* ---- GDT (in .data: accessed bits preset, so the CPU never writes it) -- */

    .section .data.gdt, "aw", @progbits
    .balign 16
gdt:
    .quad 0
    .quad 0x00cf9b000000ffff        /* 0x08: 32-bit code (unused) */
    .quad 0x00af9b000000ffff        /* 0x10: 64-bit code */
    .quad 0x00cf93000000ffff        /* 0x18: flat data */
gdt_end:
    .balign 8
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt

/* ---- page tables and stack (.bss, zeroed by the entry code) ------------ */

    .section .bss.pgtables, "aw", @nobits
    .balign 4096
pgt_pml4:
    .skip 4096
pgt_pdpt:
    .skip 4096
pgt_pd:
    .skip 4 * 4096

    .section .bss.stack, "aw", @nobits
    .balign 16
    .skip STACK_SIZE
stack_top:

    .section .note.GNU-stack, "", @progbits
