#!/bin/busybox sh
# lockstep guest init: mount the pseudo filesystems, run the op script with the
# results on the second serial port (ttyS1), apart from the kernel console
# (ttyS0), then power off. QEMU runs with -no-reboot, so a panic or an init
# that dies also ends the VM.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox echo "lockstep-init: starting reproducer"
/lockstep/repro --script /lockstep/script.ops --out /dev/ttyS1 $(/bin/busybox cat /lockstep/args 2>/dev/null)
/bin/busybox echo "lockstep-init: reproducer exited $?"
/bin/busybox sync
/bin/busybox poweroff -f
