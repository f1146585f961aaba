/* 256 interrupt entry stubs, 16 bytes apart starting at isr_stubs, so the
 * IDT code computes the address of stub v as isr_stubs + 16 * v. Each one
 * pushes a zero where the CPU pushes no error code, then the vector, and
 * joins isr_common, which saves the registers and calls
 * rt_dispatch(struct rt_frame *). The handler may edit the frame (EIP to
 * skip a faulting instruction); it is restored on the way out. */

/* Vectors for which the CPU pushes an error code. */
#define HAS_ERROR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

  .section .text
  .balign 16
  .globl isr_stubs
isr_stubs:
  .set vec, 0
  .rept 256
  .balign 16
  .if HAS_ERROR(vec)
  nop
  nop
  .else
  pushl $0
  .endif
  pushl $vec
  jmp isr_common
  .set vec, vec + 1
  .endr

isr_common:
  pusha
  push %ds
  push %es
  push %fs
  push %gs
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %fs
  mov %ax, %gs
  cld
  push %esp
  call rt_dispatch
  add $4, %esp
  pop %gs
  pop %fs
  pop %es
  pop %ds
  popa
  add $8, %esp /* vector and error code */
  iret

  .section .note.GNU-stack, "", @progbits
