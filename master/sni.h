/*
 * The host name of a ClientHello's server_name extension (RFC 6066),
 * read by the master before OpenSSL does, so that the keypair it names
 * is chosen before a session is resumed.
 */

#ifndef MEZITE_SNI_H
#define MEZITE_SNI_H

#include <stddef.h>

#define SNI_HOST_MAX	255	/* as OpenSSL takes one */

int	 sni_host(const unsigned char *, size_t, char *, size_t);

#endif /* MEZITE_SNI_H */
