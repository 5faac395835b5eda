/*
 * What the fuzz targets share.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <string.h>

#include "fuzz.h"

/*
 * One chunk as one sendmsg on a stream socket, with the descriptor fd
 * attached unless it is -1; -1 with errno as sendmsg left it.
 */
int
fuzz_sendmsg(int s, const uint8_t *buf, size_t len, int fd)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	ssize_t		 n;

	memset(&msg, 0, sizeof(msg));
	memset(&cbuf, 0, sizeof(cbuf));
	iov.iov_base = (void *)(uintptr_t)buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd != -1) {
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	if ((n = sendmsg(s, &msg, MSG_NOSIGNAL | MSG_DONTWAIT)) == -1)
		return (-1);
	/* A stream socket takes all or, when full, nothing of a chunk. */
	FUZZ_ASSERT((size_t)n == len);
	return (0);
}
