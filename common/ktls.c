/*
 * Kernel TLS on Linux: the socket side, shared by the master (install)
 * and the workers (read, close).
 *
 * After TCP_ULP "tls" and the keys are set, read() and write() carry
 * plaintext application data.  A record of another type (an alert, a
 * TLS 1.3 KeyUpdate) makes a plain read fail with EIO, so workers read
 * with recvmsg() and a control buffer, which returns the record's type
 * along with its payload.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ktls.h"

#ifdef __linux__
#include <linux/tls.h>

#ifndef SOL_TLS
#define SOL_TLS		282
#endif
#ifndef TCP_ULP
#define TCP_ULP		31
#endif

/*
 * Does the kernel accept the tls upper-layer protocol?  It can only be
 * attached to a connected TCP socket, so try on a loopback pair.
 * Returns 1 if so, 0 if not (reason in err), -1 if the probe failed.
 */
int
ktls_probe(char *err, size_t errlen)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 l = -1, c = -1, a = -1, ret = -1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(l, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(l, 1) == -1 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) == -1 ||
	    (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(c, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    (a = accept4(l, NULL, NULL, SOCK_CLOEXEC)) == -1) {
		(void)snprintf(err, errlen, "probe: %s", strerror(errno));
		goto done;
	}
	if (setsockopt(a, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == -1) {
		(void)snprintf(err, errlen, "the kernel has no TLS support "
		    "(TCP_ULP \"tls\": %s)", strerror(errno));
		ret = 0;
	} else
		ret = 1;
 done:
	if (a != -1)
		close(a);
	if (c != -1)
		close(c);
	if (l != -1)
		close(l);
	return (ret);
}

/* Attach the tls upper-layer protocol to a connected TCP socket. */
int
ktls_attach(int fd)
{
	return (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")));
}

/* Install one direction (TLS_TX or TLS_RX) of a TLS 1.3 session. */
int
ktls_set(int fd, int dir, const struct ktls_keys *k)
{
	union {
		struct tls12_crypto_info_aes_gcm_128		 g128;
		struct tls12_crypto_info_aes_gcm_256		 g256;
		struct tls12_crypto_info_chacha20_poly1305	 chacha;
	} ci;
	uint8_t		 seq[8];
	socklen_t	 len;
	int		 i;

	for (i = 0; i < 8; i++)
		seq[i] = (uint8_t)(k->seq >> (56 - 8 * i));
	memset(&ci, 0, sizeof(ci));
	/* The two AES-GCM layouts differ only in their key's size. */
#define FILL_GCM(f, type) do {						\
	if (k->key_len != sizeof((f).key))				\
		goto inval;						\
	(f).info.version = TLS_1_3_VERSION;				\
	(f).info.cipher_type = (type);					\
	memcpy((f).key, k->key, sizeof((f).key));			\
	memcpy((f).salt, k->iv, sizeof((f).salt));			\
	memcpy((f).iv, k->iv + sizeof((f).salt), sizeof((f).iv));	\
	memcpy((f).rec_seq, seq, sizeof((f).rec_seq));			\
	len = sizeof(f);						\
} while (0)

	switch (k->cipher) {
	case TLS_CIPHER_AES_GCM_128:
		FILL_GCM(ci.g128, TLS_CIPHER_AES_GCM_128);
		break;
	case TLS_CIPHER_AES_GCM_256:
		FILL_GCM(ci.g256, TLS_CIPHER_AES_GCM_256);
		break;
	case TLS_CIPHER_CHACHA20_POLY1305:
		if (k->key_len != sizeof(ci.chacha.key))
			goto inval;
		ci.chacha.info.version = TLS_1_3_VERSION;
		ci.chacha.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(ci.chacha.key, k->key, sizeof(ci.chacha.key));
		memcpy(ci.chacha.iv, k->iv, sizeof(ci.chacha.iv));
		memcpy(ci.chacha.rec_seq, seq, sizeof(ci.chacha.rec_seq));
		len = sizeof(ci.chacha);
		break;
	default:
		goto inval;
	}
#undef FILL_GCM

	if (setsockopt(fd, SOL_TLS, dir, &ci, len) == -1)
		goto fail;
	explicit_bzero(&ci, sizeof(ci));
	return (0);
 inval:
	errno = EINVAL;
 fail:
	explicit_bzero(&ci, sizeof(ci));
	return (-1);
}

/*
 * Read one record's worth.  Returns the payload length and its content
 * type in *type (KTLS_RT_DATA for application data), 0 at EOF, -1 on
 * error (EAGAIN included).
 */
ssize_t
ktls_recv(int fd, void *buf, size_t len, int *type)
{
	union {
		struct cmsghdr	 hdr;
		uint8_t		 buf[CMSG_SPACE(sizeof(uint8_t))];
	} cmsgbuf;
	struct cmsghdr	*cmsg;
	struct msghdr	 msg;
	struct iovec	 iov;
	ssize_t		 n;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);

	if ((n = recvmsg(fd, &msg, 0)) <= 0)
		return (n);
	*type = KTLS_RT_DATA;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_TLS &&
		    cmsg->cmsg_type == TLS_GET_RECORD_TYPE)
			*type = *(uint8_t *)CMSG_DATA(cmsg);
	return (n);
}

/* Send an alert record: level 1 warning, 2 fatal. */
int
ktls_send_alert(int fd, uint8_t level, uint8_t desc)
{
	union {
		struct cmsghdr	 hdr;
		uint8_t		 buf[CMSG_SPACE(sizeof(uint8_t))];
	} cmsgbuf;
	struct cmsghdr	*cmsg;
	struct msghdr	 msg;
	struct iovec	 iov;
	uint8_t		 alert[2] = { level, desc };

	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	iov.iov_base = alert;
	iov.iov_len = sizeof(alert);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_TLS;
	cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
	cmsg->cmsg_len = CMSG_LEN(sizeof(uint8_t));
	*CMSG_DATA(cmsg) = KTLS_RT_ALERT;
	return (sendmsg(fd, &msg, MSG_NOSIGNAL) == sizeof(alert) ? 0 : -1);
}

int
ktls_close_notify(int fd)
{
	return (ktls_send_alert(fd, 1, 0));
}

#else /* !__linux__ */

int
ktls_probe(char *err, size_t errlen)
{
	(void)snprintf(err, errlen, "kernel TLS is only supported on Linux");
	return (0);
}

int
ktls_attach(int fd)
{
	errno = EOPNOTSUPP;
	return (-1);
}

int
ktls_set(int fd, int dir, const struct ktls_keys *k)
{
	errno = EOPNOTSUPP;
	return (-1);
}

ssize_t
ktls_recv(int fd, void *buf, size_t len, int *type)
{
	*type = KTLS_RT_DATA;
	return (read(fd, buf, len));
}

int
ktls_send_alert(int fd, uint8_t level, uint8_t desc)
{
	errno = EOPNOTSUPP;
	return (-1);
}

int
ktls_close_notify(int fd)
{
	errno = EOPNOTSUPP;
	return (-1);
}

#endif /* __linux__ */
