#!/bin/sh
# Run a command inside a qemu VM that boots Debian's own kernel (whose
# tls module this machine's kernel may lack), with the host's root
# shared read-only over 9p and a writable scratch share.  The VM uses
# TCG: no KVM is assumed.  Succeeds only if the guest's command does:
# qemu itself exits 0 whatever happened inside.  VM_CPU picks the CPU
# model qemu emulates (default: qemu's own; "max" has AES-NI); VM_OUT
# names a host directory that the guest may write, at the same path.
#
#	vm-run.sh 'shell command'
set -eu

[ $# -eq 1 ] || { echo "usage: $0 'command'" >&2; exit 2; }
cmd=$1
top=$(pwd)

# The newest installed Debian kernel that ships the tls module.
kver=
for d in $(ls -d /lib/modules/* 2>/dev/null | sort -V); do
	v=${d##*/}
	[ -f "/boot/vmlinuz-$v" ] && [ -n "$(find "$d" -name 'tls.ko*' | head -1)" ] &&
	    kver=$v
done
[ -n "$kver" ] || { echo "vm-run: no kernel with tls.ko in /boot" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mezite-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
rd="$work/initrd"
mkdir -p "$rd/bin" "$rd/dev" "$rd/proc" "$rd/sys" "$rd/newroot" \
    "$rd/lib/modules/$kver"

cp /bin/busybox "$rd/bin/busybox"
for a in sh mount modprobe mkdir switch_root poweroff cat; do
	ln -s busybox "$rd/bin/$a"
done
for mod in virtio_pci 9pnet_virtio 9p; do
	modprobe -S "$kver" --show-depends "$mod"
done | awk '$1 == "insmod" { print $2 }' | sort -u | while read -r m; do
	cp --parents "$m" "$rd"
done
cp /lib/modules/"$kver"/modules.* "$rd/lib/modules/$kver/"

cat > "$rd/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
modprobe virtio_pci
modprobe 9pnet_virtio
modprobe 9p
for a in $(cat /proc/cmdline); do
	case $a in
	workdir=*) W=${a#workdir=} ;;
	guestscript=*) S=${a#guestscript=} ;;
	topdir=*) T=${a#topdir=} ;;
	outdir=*) O=${a#outdir=} ;;
	esac
done
o=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o $o,ro hostroot /newroot
mount -t tmpfs tmpfs /newroot/tmp
mount -t tmpfs tmpfs /newroot/run
mkdir -p /newroot$W
mount -t 9p -o $o work /newroot$W
# The tree under test, wherever it is (/tmp is the guest's own now).
mkdir -p /newroot$T
mount -t 9p -o $o,ro top /newroot$T
if [ -n "$O" ]; then
	mkdir -p /newroot$O
	mount -t 9p -o $o out /newroot$O
fi
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh -c \
    "sh $S; echo GUEST_RC=\$?; echo o > /proc/sysrq-trigger; sleep 30"
INIT
chmod 0755 "$rd/init"
(cd "$rd" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > \
    "$work/initramfs.gz"

cat > "$work/guest.sh" <<GUEST
ip link set lo up
modprobe tls
cd "$top"
$cmd
GUEST

timeout 600 qemu-system-x86_64 -accel tcg -machine q35 -m 1024 -smp 2 \
    ${VM_CPU:+-cpu "$VM_CPU"} \
    -nographic -no-reboot -kernel "/boot/vmlinuz-$kver" \
    -initrd "$work/initramfs.gz" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$work,mount_tag=work,security_model=none,multidevs=remap" \
    -virtfs "local,path=$top,mount_tag=top,security_model=none,readonly=on,multidevs=remap" \
    ${VM_OUT:+-virtfs "local,path=$VM_OUT,mount_tag=out,security_model=none,multidevs=remap"} \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 workdir=$work topdir=$top ${VM_OUT:+outdir=$VM_OUT }guestscript=$work/guest.sh" \
    > "$work/console.log" 2>&1 || true

# The guest's output; the kernel's too if the command failed.
tr -d '\r' < "$work/console.log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' |
    grep -av '^\s*$' > "$work/console.txt" || true
if grep -aq '^GUEST_RC=0' "$work/console.txt"; then
	grep -av '^\[ *[0-9.]*\]\|SeaBIOS\|iPXE\|Booting from' \
	    "$work/console.txt" || true
	exit 0
fi
cat "$work/console.txt"
echo "vm-run: the guest command failed" >&2
exit 1
