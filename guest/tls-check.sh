#!/bin/sh
# libvirt-synth guest image: /bin/tls-check, the init's step `tls`. Unmodified TLS programs
# (Debian's openssl s_server/s_client, guest/tls_echo.py on Python's ssl) exchange a file over
# 127.0.0.1; /etc/ssl/openssl.cnf alone puts their record crypto on the provider synth. The
# server of each exchange uses the first crypto device, the client the second (a device has one
# driver at a time; LIBVIRT_SYNTH_OSSL_DEVICE names it per process).
#
#   synth.tls_lines=N   the file: the output of `seq 1 N` (default 60000: 348894 bytes)
#
# One JSON line per exchange, {"type":"tls", ...}: what was asked, what was negotiated, bytes
# and SHA-256 sent and received, each program's exit status and the provider's lines on its
# stderr ("synth: device D: N ops, M fallbacks (...)" at exit). Exit status: 0 if every
# exchange delivered the file intact, 1 otherwise. docs/guest.md.

CERT=/etc/synth-tls/cert.pem
KEY=/etc/synth-tls/key.pem
ECHO=/usr/share/libvirt-synth/tls_echo.py
CHACHA_CNF=/etc/ssl/openssl-chacha20.cnf
W=/tmp/tls
WAIT=60

lines=60000
for word in $(cat /proc/cmdline); do
    case "$word" in
        synth.tls_lines=*) lines=${word#synth.tls_lines=} ;;
    esac
done

mkdir -p $W
ifconfig lo 127.0.0.1 up
seq 1 "$lines" > $W/data
size=$(wc -c < $W/data)
sum=$(sha256sum $W/data | cut -d' ' -f1)

set -- $(synth-guest probe 2>/dev/null | sed -n 's/.*"dev":"\([^"]*\)".*"class":"crypto".*/\1/p')
SDEV=${1:-none}
CDEV=${2:-none}
echo "tls: $size bytes (seq 1 $lines, sha256 $sum); server on crypto device $SDEV, client on $CDEV"

# Wait until something listens on 127.0.0.1:$1 (/proc/net/tcp: local address, state 0A).
listening() {
    hex=$(printf '%04X' "$1")
    i=0
    while [ $i -lt $((WAIT * 10)) ]; do
        grep -q "0100007F:$hex 00000000:0000 0A" /proc/net/tcp && return 0
        usleep 100000
        i=$((i + 1))
    done
    return 1
}

# The provider's lines on a stderr file, as a JSON array.
synth_lines() {
    printf '['
    sep=''
    grep '^synth: ' "$1" | tr -d '"\\' | while IFS= read -r l; do
        printf '%s"%s"' "$sep" "$l"
        sep=','
    done
    printf ']'
}

# report NAME TOOL VERSION CIPHER NEGOTIATED_VERSION NEGOTIATED_CIPHER RECEIVED_FILE SERVER_RC CLIENT_RC
report() {
    got=0
    gsum=none
    if [ -f "$7" ]; then
        got=$(wc -c < "$7")
        gsum=$(sha256sum "$7" | cut -d' ' -f1)
    fi
    result=fail
    [ "$gsum" = "$sum" ] && [ "$8" = 0 ] && [ "$9" = 0 ] && result=pass
    [ $result = pass ] || failures=$((failures + 1))
    printf '{"type":"tls","name":"%s","tool":"%s","version":"%s","cipher":"%s",' "$1" "$2" "$3" "$4"
    printf '"negotiated_version":"%s","negotiated_cipher":"%s",' "$5" "$6"
    printf '"bytes":%s,"sha256":"%s","received_bytes":%s,"received_sha256":"%s",' "$size" "$sum" "$got" "$gsum"
    printf '"server_device":"%s","client_device":"%s","server_rc":%s,"client_rc":%s,' "$SDEV" "$CDEV" "$8" "$9"
    printf '"server_synth":%s,"client_synth":%s,' "$(synth_lines $W/s.err)" "$(synth_lines $W/c.err)"
    printf '"result":"%s"}\n' "$result"
    if [ $result != pass ]; then
        echo "tls: $1 failed; the server's stderr:"
        tail -n 20 $W/s.err
        echo "tls: the client's stderr:"
        tail -n 20 $W/c.err
    fi
}

# openssl NAME PORT VERSION CIPHER: s_client sends the file, s_server writes what it got.
openssl_exchange() {
    if [ "$3" = TLSv1.3 ]; then
        opts="-tls1_3 -ciphersuites $4"
    else
        opts="-tls1_2 -cipher $4"
    fi
    rm -f $W/hold $W/recv $W/s.err $W/c.err
    mkfifo $W/hold
    # s_server ends a connection when its stdin ends: the fifo stays open until the server is done.
    LIBVIRT_SYNTH_OSSL_DEVICE=$SDEV timeout $WAIT openssl s_server -accept 127.0.0.1:$2 -cert $CERT -key $KEY \
        -naccept 1 -quiet $opts < $W/hold > $W/recv 2> $W/s.err &
    spid=$!
    exec 3> $W/hold
    crc=1
    if listening "$2"; then
        LIBVIRT_SYNTH_OSSL_DEVICE=$CDEV timeout $WAIT openssl s_client -connect 127.0.0.1:$2 -CAfile $CERT \
            -verify_return_error -verify_hostname localhost -brief $opts < $W/data > /dev/null 2> $W/c.err
        crc=$?
    else
        echo "nothing listens on port $2" > $W/c.err
    fi
    [ $crc = 0 ] || kill $spid 2>/dev/null
    wait $spid  # s_server ends with the client's connection (-naccept 1), then its stdin may end
    src=$?
    exec 3>&-
    nver=$(sed -n 's/^Protocol version: //p' $W/c.err)
    ncip=$(sed -n 's/^Ciphersuite: //p' $W/c.err)
    report "$1" openssl "$3" "$4" "${nver:-none}" "${ncip:-none}" $W/recv $src $crc
}

# python NAME PORT VERSION CIPHER: tls_echo.py's client sends the file, its server echoes it back.
python_exchange() {
    v=${3#TLSv}
    rm -f $W/back $W/s.err $W/c.err $W/s.out $W/c.out
    cnf=/etc/ssl/openssl.cnf
    set -- "$1" "$2" "$3" "$4" --tls "$v"
    case "$4" in
        TLS_CHACHA20_POLY1305_SHA256) cnf=$CHACHA_CNF ;;  # TLS 1.3 suites are OpenSSL's configuration
        TLS_AES_256_GCM_SHA384) ;;                        # OpenSSL's first TLS 1.3 suite
        *) set -- "$@" --ciphers "$4" ;;
    esac
    name=$1 port=$2 ver=$3 cip=$4
    shift 4
    OPENSSL_CONF=$cnf LIBVIRT_SYNTH_OSSL_DEVICE=$SDEV timeout $WAIT python3 $ECHO server --port "$port" \
        --cert $CERT --key $KEY "$@" > $W/s.out 2> $W/s.err &
    spid=$!
    crc=1
    if listening "$port"; then
        OPENSSL_CONF=$cnf LIBVIRT_SYNTH_OSSL_DEVICE=$CDEV timeout $WAIT python3 $ECHO client --port "$port" \
            --ca $CERT --data $W/data --out $W/back "$@" > $W/c.out 2> $W/c.err
        crc=$?
    else
        echo "nothing listens on port $port" > $W/c.err
    fi
    [ $crc = 0 ] || kill $spid 2>/dev/null
    wait $spid
    src=$?
    nver=$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' $W/c.out)
    ncip=$(sed -n 's/.*"cipher": "\([^"]*\)".*/\1/p' $W/c.out)
    report "$name" python "$ver" "$cip" "${nver:-none}" "${ncip:-none}" $W/back $src $crc
}

failures=0
openssl_exchange openssl-tls13-aes256gcm 4431 TLSv1.3 TLS_AES_256_GCM_SHA384
openssl_exchange openssl-tls13-chacha20 4432 TLSv1.3 TLS_CHACHA20_POLY1305_SHA256
openssl_exchange openssl-tls12-aes256gcm 4433 TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384
python_exchange python-tls13-aes256gcm 4434 TLSv1.3 TLS_AES_256_GCM_SHA384
python_exchange python-tls13-chacha20 4435 TLSv1.3 TLS_CHACHA20_POLY1305_SHA256
python_exchange python-tls12-aes256gcm 4436 TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384
echo "tls: $failures of 6 exchanges failed"
[ $failures = 0 ]
