/*
 * Kernel TLS (Linux): the master installs a TLS 1.3 session's keys on
 * the TCP socket and passes the socket itself; the worker then reads
 * and writes plaintext and sees alerts and handshake records through
 * ktls_recv().
 */

#ifndef MEZITE_KTLS_H
#define MEZITE_KTLS_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#define KTLS_SECRET_MAX		48	/* SHA-384 */

/* TLS record content types. */
#define KTLS_RT_ALERT		21
#define KTLS_RT_HANDSHAKE	22
#define KTLS_RT_DATA		23

/* The application traffic secrets of one TLS 1.3 session. */
struct ktls_secrets {
	uint8_t		 client[KTLS_SECRET_MAX];
	uint8_t		 server[KTLS_SECRET_MAX];
	size_t		 client_len;
	size_t		 server_len;
	uint64_t	 tickets;	/* NewSessionTicket records sent */
};

/* The kernel's view of one direction, as setsockopt(SOL_TLS) wants. */
struct ktls_keys {
	uint16_t	 cipher;	/* TLS_CIPHER_* of linux/tls.h */
	uint8_t		 key[32];
	size_t		 key_len;
	uint8_t		 iv[12];
	uint64_t	 seq;
};

int	 ktls_probe(char *, size_t);
int	 ktls_attach(int);
int	 ktls_set(int, int, const struct ktls_keys *);
ssize_t	 ktls_recv(int, void *, size_t, int *);
int	 ktls_send_alert(int, uint8_t, uint8_t);
int	 ktls_close_notify(int);

#endif /* MEZITE_KTLS_H */
