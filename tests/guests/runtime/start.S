/* Multiboot v1 entry for reel's test guests. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* page-align modules, want memory info */

  .section .multiboot, "a"
  .align 4
  .long MB_MAGIC
  .long MB_FLAGS
  .long -(MB_MAGIC + MB_FLAGS)

  .section .text
  .globl _start
_start:
  cli
  mov $stack_top, %esp
  cld
  push %ebx /* multiboot info */
  push %eax /* magic */
  call rt_start
1:
  cli
  hlt
  jmp 1b

/* Interrupt stubs: push a dummy error code where the CPU pushes none, then
 * the vector, and call rt_dispatch(frame). */
#define STUB_NOERR(n) \
  .globl isr_stub_##n; isr_stub_##n: push $0; push $n; jmp isr_common
#define STUB_ERR(n) \
  .globl isr_stub_##n; isr_stub_##n: push $n; jmp isr_common

isr_common:
  pusha
  push %ds
  push %es
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %es
  push %esp
  call rt_dispatch
  add $4, %esp
  pop %es
  pop %ds
  popa
  add $8, %esp
  iret

STUB_NOERR(0)
STUB_NOERR(1)
STUB_NOERR(2)
STUB_NOERR(3)
STUB_NOERR(4)
STUB_NOERR(5)
STUB_NOERR(6)
STUB_NOERR(7)
STUB_ERR(8)
STUB_NOERR(9)
STUB_ERR(10)
STUB_ERR(11)
STUB_ERR(12)
STUB_ERR(13)
STUB_ERR(14)
STUB_NOERR(15)
STUB_NOERR(16)
STUB_ERR(17)
STUB_NOERR(18)
STUB_NOERR(19)
STUB_NOERR(20)
STUB_NOERR(21)
STUB_NOERR(22)
STUB_NOERR(23)
STUB_NOERR(24)
STUB_NOERR(25)
STUB_NOERR(26)
STUB_NOERR(27)
STUB_NOERR(28)
STUB_NOERR(29)
STUB_NOERR(30)
STUB_NOERR(31)
STUB_NOERR(32)
STUB_NOERR(33)
STUB_NOERR(34)
STUB_NOERR(35)
STUB_NOERR(36)
STUB_NOERR(37)
STUB_NOERR(38)
STUB_NOERR(39)
STUB_NOERR(40)
STUB_NOERR(41)
STUB_NOERR(42)
STUB_NOERR(43)
STUB_NOERR(44)
STUB_NOERR(45)
STUB_NOERR(46)
STUB_NOERR(47)
STUB_NOERR(48)

  .section .rodata
  .globl isr_stub_table
isr_stub_table:
  .long isr_stub_0,  isr_stub_1,  isr_stub_2,  isr_stub_3,  isr_stub_4,  isr_stub_5,  isr_stub_6,  isr_stub_7
  .long isr_stub_8,  isr_stub_9,  isr_stub_10, isr_stub_11, isr_stub_12, isr_stub_13, isr_stub_14, isr_stub_15
  .long isr_stub_16, isr_stub_17, isr_stub_18, isr_stub_19, isr_stub_20, isr_stub_21, isr_stub_22, isr_stub_23
  .long isr_stub_24, isr_stub_25, isr_stub_26, isr_stub_27, isr_stub_28, isr_stub_29, isr_stub_30, isr_stub_31
  .long isr_stub_32, isr_stub_33, isr_stub_34, isr_stub_35, isr_stub_36, isr_stub_37, isr_stub_38, isr_stub_39
  .long isr_stub_40, isr_stub_41, isr_stub_42, isr_stub_43, isr_stub_44, isr_stub_45, isr_stub_46, isr_stub_47
  .long isr_stub_48

  .section .bss
  .align 16
stack_bottom:
  .skip 65536
stack_top:
