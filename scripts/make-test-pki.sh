#!/bin/sh
# make-test-pki.sh DIR [SERVER_IP_OR_NAME...]
#
# Makes a throw-away PKI for trying govirtd's (or libvirtd's) TLS transport,
# laid out as libvirt's pkipath expects:
#
#   DIR/cacert.pem DIR/cakey.pem          test CA
#   DIR/servercert.pem DIR/serverkey.pem  server: CN = first name, every
#                                         name as a subjectAltName (IP or DNS)
#   DIR/clientcert.pem DIR/clientkey.pem  client, DN (as libvirt prints it):
#                                         C=GB,ST=London,L=London,O=govirtd test,CN=govirtd-test-client
#   DIR/other-ca/cacert.pem, cakey.pem    a second, unrelated CA
#   DIR/other-client/                     a client pkipath whose certificate
#                                         is signed by the other CA (its
#                                         cacert.pem holds both CAs, so it
#                                         trusts the server): for tests that
#                                         a server refuses it
#
# The daemon uses ca_file = DIR/cacert.pem, cert_file = DIR/servercert.pem,
# key_file = DIR/serverkey.pem; a client uses ?pkipath=DIR.
#
# Idempotent: existing files are kept; the server certificate is remade
# only when the names asked for change. Uses certtool (Debian gnutls-bin)
# when present, else openssl. Test use only: keys are unencrypted.
set -eu

if [ $# -lt 1 ]; then
	echo "usage: $0 DIR [SERVER_IP_OR_NAME...]" >&2
	exit 2
fi
dir=$1
shift
[ $# -gt 0 ] || set -- 127.0.0.1 localhost
mkdir -p "$dir/other-ca" "$dir/other-client"
umask 077

days=3650
client_dn_c=GB
client_dn_st=London
client_dn_l=London
client_dn_o="govirtd test"
client_dn_cn=govirtd-test-client

is_ip() {
	case $1 in
	*[!0-9.]*) return 1 ;;
	*.*.*.*) return 0 ;;
	esac
	return 1
}

tool=openssl
if command -v certtool >/dev/null 2>&1; then
	tool=certtool
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# genkey FILE
genkey() {
	[ -s "$1" ] && return 0
	if [ $tool = certtool ]; then
		certtool --generate-privkey --key-type=rsa --bits=2048 --outfile "$1" 2>/dev/null
	else
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
	fi
}

# mkca KEY CERT CN
mkca() {
	genkey "$1"
	[ -s "$2" ] && return 0
	if [ $tool = certtool ]; then
		cat >"$tmp/ca.info" <<EOF
cn = $3
ca
cert_signing_key
crl_signing_key
expiration_days = $days
EOF
		certtool --generate-self-signed --load-privkey "$1" --template "$tmp/ca.info" --outfile "$2" 2>/dev/null
	else
		openssl req -new -x509 -key "$1" -out "$2" -days $days -subj "/CN=$3" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" \
			-addext "subjectKeyIdentifier=hash" 2>/dev/null
	fi
}

# mkleaf KIND(server|client) CAKEY CACERT KEY CERT NAME...
# server: CN is the first name, all names in subjectAltName; client: the
# fixed test DN.
mkleaf() {
	kind=$1 cakey=$2 cacert=$3 key=$4 cert=$5
	shift 5
	genkey "$key"
	if [ $tool = certtool ]; then
		{
			if [ "$kind" = server ]; then
				echo "cn = $1"
				for n in "$@"; do
					if is_ip "$n"; then echo "ip_address = $n"; else echo "dns_name = $n"; fi
				done
				echo "tls_www_server"
			else
				echo "country = $client_dn_c"
				echo "state = $client_dn_st"
				echo "locality = $client_dn_l"
				echo "organization = $client_dn_o"
				echo "cn = $client_dn_cn"
				echo "tls_www_client"
			fi
			echo "encryption_key"
			echo "signing_key"
			echo "expiration_days = $days"
		} >"$tmp/leaf.info"
		certtool --generate-certificate --load-privkey "$key" --load-ca-certificate "$cacert" \
			--load-ca-privkey "$cakey" --template "$tmp/leaf.info" --outfile "$cert" 2>/dev/null
	else
		{
			echo "basicConstraints=CA:FALSE"
			echo "keyUsage=critical,digitalSignature,keyEncipherment"
			if [ "$kind" = server ]; then
				echo "extendedKeyUsage=serverAuth"
				san=
				for n in "$@"; do
					if is_ip "$n"; then e="IP:$n"; else e="DNS:$n"; fi
					san=${san:+$san,}$e
				done
				echo "subjectAltName=$san"
			else
				echo "extendedKeyUsage=clientAuth"
			fi
			echo "subjectKeyIdentifier=hash"
			echo "authorityKeyIdentifier=keyid"
		} >"$tmp/leaf.ext"
		if [ "$kind" = server ]; then
			subj="/CN=$1"
		else
			# openssl writes RDNs in this order, which is also the order
			# libvirt prints them in: C=...,ST=...,L=...,O=...,CN=...
			subj="/C=$client_dn_c/ST=$client_dn_st/L=$client_dn_l/O=$client_dn_o/CN=$client_dn_cn"
		fi
		openssl req -new -key "$key" -subj "$subj" -out "$tmp/leaf.csr" 2>/dev/null
		openssl x509 -req -in "$tmp/leaf.csr" -CA "$cacert" -CAkey "$cakey" \
			-set_serial "0x$(openssl rand -hex 12)" -days $days \
			-extfile "$tmp/leaf.ext" -out "$cert" 2>/dev/null
	fi
}

mkca "$dir/cakey.pem" "$dir/cacert.pem" "govirtd test CA"
mkca "$dir/other-ca/cakey.pem" "$dir/other-ca/cacert.pem" "govirtd unrelated test CA"

names="$*"
if [ ! -s "$dir/servercert.pem" ] || [ "$(cat "$dir/server.names" 2>/dev/null)" != "$names" ]; then
	rm -f "$dir/servercert.pem"
	mkleaf server "$dir/cakey.pem" "$dir/cacert.pem" "$dir/serverkey.pem" "$dir/servercert.pem" "$@"
	echo "$names" >"$dir/server.names"
fi
if [ ! -s "$dir/clientcert.pem" ]; then
	mkleaf client "$dir/cakey.pem" "$dir/cacert.pem" "$dir/clientkey.pem" "$dir/clientcert.pem"
fi
if [ ! -s "$dir/other-client/clientcert.pem" ]; then
	mkleaf client "$dir/other-ca/cakey.pem" "$dir/other-ca/cacert.pem" \
		"$dir/other-client/clientkey.pem" "$dir/other-client/clientcert.pem"
fi
# Both CAs: the real one to trust the server, the other one because
# libvirt clients check their own certificate against their CA file before
# connecting and would refuse to try otherwise.
cat "$dir/cacert.pem" "$dir/other-ca/cacert.pem" >"$dir/other-client/cacert.pem"

# Certificates are public; keys stay 0600.
chmod 644 "$dir"/*.pem "$dir"/other-ca/cacert.pem "$dir"/other-client/*.pem
chmod 600 "$dir"/*key.pem "$dir"/other-ca/cakey.pem "$dir"/other-client/clientkey.pem
echo "test PKI in $dir (server names: $names; made with $tool)"
