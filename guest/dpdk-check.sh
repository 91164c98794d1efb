#!/bin/sh
# libvirt-synth guest image: /bin/dpdk-check, the init's step `dpdk`. DPDK's own verifier,
# Debian's dpdk-test-crypto-perf --ptest verify, runs each test-vector file of the image
# (/usr/share/libvirt-synth/dpdk/vectors/<name>.data: NIST GCM for AES-128/256-GCM, RFC 8439 for
# ChaCha20-Poly1305) encrypting and decrypting, on the crypto_synth PMD driving a synthetic crypto
# device by its PCI address (--vdev crypto_synth0,pci=BDF: BAR2 through sysfs, not DPDK's PCI bus,
# hence --no-pci). EAL: --no-huge -m 256, both lcores on CPU 0 (the VM may have one), and only
# the drivers the image lists (-d each; the image has no DPDK driver directory to load in full).
#
#   synth.dpdk_ops=N      ops per run (default 64), in bursts of 32
#   synth.dpdk_dev=BDF    the device (default: the first crypto device synth-guest probe lists)
#
# One JSON line per run, {"type":"dpdk", ...}: the vector, algorithm, direction, sizes, the
# device, crypto-perf's exit status and its verify row (enqueued, dequeued, failed ops: an op
# fails if its status is not SUCCESS or its output or digest differs from the vector's), the
# PMD's probe line; then {"type":"summary", ...}. Exit status: 0 if every run verified every op,
# 1 otherwise. docs/guest.md.

SHARE=/usr/share/libvirt-synth/dpdk
W=/tmp/dpdk
WAIT=300
BURST=32

ops=64
dev=""
for word in $(cat /proc/cmdline); do
    case "$word" in
        synth.dpdk_ops=*) ops=${word#synth.dpdk_ops=} ;;
        synth.dpdk_dev=*) dev=${word#synth.dpdk_dev=} ;;
    esac
done
if [ -z "$dev" ]; then
    set -- $(synth-guest probe 2>/dev/null | sed -n 's/.*"dev":"\([^"]*\)".*"class":"crypto".*/\1/p')
    dev=${1:-none}
fi

if [ ! -x /usr/bin/dpdk-test-crypto-perf ] || [ ! -f $SHARE/drivers ]; then
    echo "dpdk: this image carries no DPDK (build the PMD with make dpdk, install dpdk-dev, rebuild the image)"
    echo '{"type":"summary","runs":0,"failed":0,"result":"absent"}'
    exit 1
fi
for flag in sse4_2 popcnt; do
    if ! grep -qw $flag /proc/cpuinfo; then
        echo "dpdk: the CPU lacks $flag, which Debian's DPDK is built for (-march=corei7): give the VM a CPU model" \
            "that has it (<cpu mode='custom'><model>Nehalem</model></cpu>); QEMU's default qemu64 has not"
        echo '{"type":"summary","runs":0,"failed":0,"result":"unsupported-cpu"}'
        exit 1
    fi
done
drivers=""
while read -r so; do
    drivers="$drivers -d $so"
done < $SHARE/drivers

mkdir -p $W /var/run  # EAL keeps its runtime files under /var/run/dpdk
mem=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
echo "dpdk: device $dev, $ops ops per run, guest memory $((mem / 1024)) MiB"

# The number of bytes of each field of a test-vector file: key, IV, AAD, plaintext, digest.
sizes() {
    awk '/^#/ {next} /^\[/ {k = ""; next} /=$/ {k = $1; next}
         k != "" {n[k] += gsub(/0x/, "")}
         END {printf "%d %d %d %d %d\n", n["aead_key"], n["aead_iv"], n["aad"], n["plaintext"], n["digest"]}' "$1"
}

failures=0
runs=0
for f in $SHARE/vectors/*.data; do
    vec=$(basename "$f" .data)
    case "$vec" in
        aes-*gcm*) algo=aes-gcm ;;  # the name says the algorithm: aes-256-gcm, aes-256-gcm-wrong-tag
        chacha20-poly1305*) algo=chacha20-poly1305 ;;
        *) echo "dpdk: $f: no DPDK algorithm for $vec"; failures=$((failures + 1)); continue ;;
    esac
    set -- $(sizes "$f")
    key=$1 iv=$2 aad=$3 len=$4 digest=$5
    case_name=$(sed -n 's/^\[\(.*\)\]$/\1/p' "$f" | head -n 1)
    for op in encrypt decrypt; do
        runs=$((runs + 1))
        t0=$(date +%s)
        timeout $WAIT dpdk-test-crypto-perf --lcores 0@0,1@0 --no-huge -m 256 --no-pci --no-telemetry $drivers \
            --vdev "crypto_synth0,pci=$dev" -- --devtype crypto_synth --ptest verify --optype aead \
            --aead-algo $algo --aead-op $op --aead-key-sz "$key" --aead-iv-sz "$iv" --aead-aad-sz "$aad" \
            --digest-sz "$digest" --buffer-sz "$len" --total-ops "$ops" --burst-sz $BURST \
            --test-file "$f" --test-name "$case_name" > $W/out 2>&1
        rc=$?
        t1=$(date +%s)
        # The verify row: lcore, buffer size, burst size, enqueued, dequeued, failed enq, failed deq, failed ops.
        set -- $(awk 'f && NF {print $4, $5, $8; exit} /Failed Ops/ {f = 1}' $W/out)
        enq=${1:--1} deq=${2:--1} bad=${3:--1}
        probe=$(grep -m 1 '^crypto_synth: crypto_synth0: ' $W/out | tr -d '"\\')
        result=fail
        [ $rc = 0 ] && [ "$enq" = "$ops" ] && [ "$deq" = "$ops" ] && [ "$bad" = 0 ] && result=pass
        [ $result = pass ] || failures=$((failures + 1))
        printf '{"type":"dpdk","name":"%s-%s","vector":"%s","algo":"%s","op":"%s","device":"%s",' \
            "$vec" "$op" "$vec" "$algo" "$op" "$dev"
        printf '"key_sz":%s,"iv_sz":%s,"aad_sz":%s,"buffer_sz":%s,"digest_sz":%s,"total_ops":%s,"burst":%s,' \
            "$key" "$iv" "$aad" "$len" "$digest" "$ops" $BURST
        printf '"rc":%s,"enqueued":%s,"dequeued":%s,"failed_ops":%s,"seconds":%s,"pmd":"%s","result":"%s"}\n' \
            $rc "$enq" "$deq" "$bad" $((t1 - t0)) "$probe" $result
        if [ $result != pass ]; then
            echo "dpdk: $vec $op failed; crypto-perf's output ends:"
            grep -v '^0x' $W/out | tail -n 25
        fi
    done
done
result=pass
[ $failures = 0 ] && [ $runs -gt 0 ] || result=fail
printf '{"type":"summary","device":"%s","runs":%s,"failed":%s,"result":"%s"}\n' "$dev" $runs $failures $result
[ $result = pass ]
