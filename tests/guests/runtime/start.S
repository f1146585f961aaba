/* Multiboot (v1) entry of reel's test guests: the header the loader looks
 * for, a stack, and the hand-off to rt_start(magic, mbi) in C. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* bit 0: page-align modules, bit 1: memory info */

  .section .multiboot, "a"
  .balign 4
  .long MB_MAGIC
  .long MB_FLAGS
  .long -(MB_MAGIC + MB_FLAGS)

  .section .text
  .globl _start
_start:
  cli
  mov $stack_top, %esp
  xor %ebp, %ebp
  cld
  push %ebx /* multiboot information */
  push %eax /* magic, 0x2BADB002 from a multiboot loader */
  call rt_start
  /* rt_start does not return; stop here if it ever does. */
1:
  cli
  hlt
  jmp 1b

  .section .bss
  .balign 16
stack_bottom:
  .skip 65536
  .globl stack_top
stack_top:

  .section .note.GNU-stack, "", @progbits
