#!/bin/busybox sh
# lockstep guest init: mount the pseudo filesystems, run the op script with the
# results on their own port (ttyS1, or hvc0 on arm64), apart from the kernel
# console (ttyS0 / ttyAMA0), then power off. QEMU runs with -no-reboot, so a panic or an init
# that dies also ends the VM.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
# Fault-injection hook for the runner's tests (test/faults.test.ts): with
# lockstep.hang_before=1 on the kernel command line the guest reaches init but
# never starts the reproducer, like a guest stuck before its workload.
case " $(/bin/busybox cat /proc/cmdline) " in
*" lockstep.hang_before=1 "*)
	/bin/busybox echo "lockstep-init: lockstep.hang_before=1: hanging before the reproducer"
	while :; do /bin/busybox sleep 3600; done ;;
esac
# Splat hook for the splat-policy test (test/splats.test.ts): with
# lockstep.splat=warn the guest's kernel log gets a WARN in the kernel's own
# format through /dev/kmsg (the minimal guest config has no LKDTM), so the
# console carries it like a real WARN_ON() and the scan and policy judge it.
case " $(/bin/busybox cat /proc/cmdline) " in
*" lockstep.splat=warn "*)
	/bin/busybox echo "<4>------------[ cut here ]------------" >/dev/kmsg
	/bin/busybox echo "<4>WARNING: CPU: 0 PID: 1 at vm-images/init.sh:1 lockstep_splat_hook+0x0/0x0" >/dev/kmsg
	/bin/busybox echo "<4>---[ end trace 0000000000000000 ]---" >/dev/kmsg ;;
esac
# Kernel modules the guest needs, in the order of /lockstep/modules: the
# results channel (a Debian arm64 kernel builds its virtio console as
# modules: src/kernels/obtain/guest-modules.ts) and, in a Debian image, the
# lockstep_aux PMU built against its headers (src/kernels/obtain/debian-auxpmu.ts);
# present only in such guests' initramfs. A failed insmod leaves busybox's
# reason and the line below on the console (the AUX cells' SKIP reason quotes them).
if [ -f /lockstep/modules ]; then
	for m in $(/bin/busybox cat /lockstep/modules); do
		/bin/busybox insmod "/lib/modules/$m.ko" || /bin/busybox echo "lockstep-init: insmod $m failed"
	done
fi
# Where results go: ttyS1 (x86_64, the second 16550), or the device named by
# lockstep.out= (arm64: hvc0, a virtio console; src/runner/qemu.ts).
out=/dev/ttyS1
for w in $(/bin/busybox cat /proc/cmdline); do
	case "$w" in lockstep.out=*) out="/dev/${w#lockstep.out=}" ;; esac
done
/bin/busybox echo "lockstep-init: starting reproducer (results on $out)"
# the reproducer refuses sysrq ops unless it runs here
export LOCKSTEP_GUEST=1
/lockstep/repro --script /lockstep/script.ops --out "$out" $(/bin/busybox cat /lockstep/args 2>/dev/null)
/bin/busybox echo "lockstep-init: reproducer exited $?"
/bin/busybox sync
/bin/busybox poweroff -f
