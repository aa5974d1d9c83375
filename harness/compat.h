/*
 * Kernel ABI numbers and structs of lockstep-repro that older or foreign
 * headers may lack (the cross toolchain's, a distribution's old ones).
 */
#ifndef LOCKSTEP_COMPAT_H
#define LOCKSTEP_COMPAT_H

#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#if defined(__has_include)
#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#define HAVE_IO_URING_H 1
#endif
#endif
#ifndef HAVE_IO_URING_H
/* Only setup's params (all zero in, ignored out) and the register opcode are needed. */
struct io_uring_params { uint8_t raw[120]; };
#define IORING_REGISTER_BUFFERS 0
#endif

/* Syscall numbers are the same on every arch for these (unified table since 5.1). */
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_io_uring_register
#define SYS_io_uring_register 427
#endif
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef SYS_bpf
#if defined(__x86_64__)
#define SYS_bpf 321
#elif defined(__aarch64__)
#define SYS_bpf 280 /* asm-generic/unistd.h */
#else
#error "SYS_bpf: add this arch's number"
#endif
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#endif
