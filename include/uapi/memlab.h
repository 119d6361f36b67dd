/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The /dev/memlab ioctl ABI for C programs. The Rust definitions in
 * src/uapi.rs are the source of truth; this header mirrors them.
 */
#ifndef _UAPI_MEMLAB_H
#define _UAPI_MEMLAB_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MEMLAB_ABI_VERSION 1
#define MEMLAB_IOC_MAGIC 0xB7

struct memlab_version {
	__u32 abi_version;	/* MEMLAB_ABI_VERSION of the running module */
	__u32 struct_size;	/* sizeof(struct memlab_version) in the module */
	__u32 max_page_order;	/* the kernel's MAX_PAGE_ORDER */
	__u32 page_size;	/* PAGE_SIZE in bytes */
};

#define MEMLAB_IOC_VERSION _IOR(MEMLAB_IOC_MAGIC, 0x00, struct memlab_version)

#endif /* _UAPI_MEMLAB_H */
