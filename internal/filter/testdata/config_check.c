/* Compiles bpf/config.h alone so the filter tests can check the Go
 * constants against the C declarations. */
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;

#include "config.h"
