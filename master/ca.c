/*
 * The ca process and the master's side of it.
 *
 * The master parses every untrusted handshake, so it holds no private
 * key: the supervisor sends the keys to the ca process, which runs as a
 * user of its own (_mezca), chrooted, and takes no network input.
 * The master loads only the certificates and installs keys whose
 * signing is forwarded to the ca over a socketpair of its own, one
 * datagram each way, and waits for the answer at most CA_TIMEOUT ms: a
 * failure fails that handshake only.
 *
 * The ca serves every master at once: each has a signing channel of its
 * own (at most CA_CHANS_MAX), answered on its own, given by the
 * supervisor whenever either end starts.  A master that goes away
 * closes its channel and the ca forgets it; the master that takes its
 * place gets a new one, and the ca keeps running.  A ca told to drain
 * (replaced on a reload) leaves once the last master has let go.
 *
 * The ca answers sign requests and nothing else: a key it holds (named
 * by the SHA-256 of its public key), a digest of a size a TLS handshake
 * signs, with a padding TLS 1.2 or 1.3 uses.  Anything else is refused
 * and logged: only a master that is not ours asks for it.
 *
 * The master's keys are OpenSSL's legacy EC_KEY_METHOD and RSA_METHOD
 * with sign callbacks.  They are deprecated in OpenSSL 3 but still
 * carried, and OpenSSL's TLS stack uses a key with a method of its own
 * through the legacy path as it is; a provider (a key manager and
 * signature implementation, found through a property query by libssl)
 * is the modern way but is several hundred lines of dispatch tables
 * for the same two calls, and OpenSSL 1.1 and LibreSSL have no
 * providers.
 */

#define OPENSSL_SUPPRESS_DEPRECATED

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <event.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "casign.h"
#include "log.h"
#include "sandbox.h"
#include "meta.h"
#include "proc.h"
#include "util.h"

#define CA_MAXSIZE	(256 * 1024)	/* keys, from the supervisor */
#define CA_KEYS_MAX	64

struct ca_key {
	uint8_t		 id[CA_KEYID_LEN];
	EVP_PKEY	*pkey;
	EVP_PKEY_CTX	*ctx;		/* ECDSA's, initialised once */
};

static struct ca_key	 keys[CA_KEYS_MAX], pend[CA_KEYS_MAX];
static size_t		 nkeys, npend;
static struct proc_chan	 parent;
#define CA_CHANS_MAX	64		/* masters' channels at once */

/* A master's signing channel. */
struct ca_chan {
	int		 fd;
	struct event	 ev;
};

static struct ca_chan	*chans[CA_CHANS_MAX];
static size_t		 nchans;
static int		 draining;	/* exit when the masters let go */

static void	 ca_parent_closed(struct proc_chan *);
static void	 ca_request(int, short, void *);
static void	 ca_keys_free(struct ca_key *, size_t *);

int
ca_keyid(EVP_PKEY *pkey, uint8_t id[CA_KEYID_LEN])
{
	unsigned char	*der = NULL;
	int		 len;

	if ((len = i2d_PUBKEY(pkey, &der)) <= 0)
		return (-1);
	SHA256(der, len, id);
	OPENSSL_free(der);
	return (0);
}

/*
 * Whether the request is one a TLS handshake makes of key pkey: 0, or
 * -1 with the reason in *why.
 */
int
ca_req_check(const struct ca_req *req, EVP_PKEY *pkey, const char **why)
{
	const unsigned char	*em = req->data;
	int			 bits;

	if (req->len == 0 || req->len > CA_DATA_MAX) {
		*why = "bad length";
		return (-1);
	}
	switch (req->op) {
	case CA_ECDSA:
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) {
			*why = "ECDSA with a key that is not EC";
			return (-1);
		}
		if (req->len != SHA256_DIGEST_LENGTH &&
		    req->len != SHA384_DIGEST_LENGTH &&
		    req->len != SHA512_DIGEST_LENGTH) {
			*why = "not a SHA-2 digest's size";
			return (-1);
		}
		return (0);
	case CA_RSA_PKCS1:
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
			*why = "PKCS#1 with a key that is not RSA";
			return (-1);
		}
		if (!((req->nid == NID_sha256 &&
		    req->len == SHA256_DIGEST_LENGTH) ||
		    (req->nid == NID_sha384 &&
		    req->len == SHA384_DIGEST_LENGTH) ||
		    (req->nid == NID_sha512 &&
		    req->len == SHA512_DIGEST_LENGTH))) {
			*why = "not a SHA-2 digest";
			return (-1);
		}
		return (0);
	case CA_RSA_PSS:
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
			*why = "PSS with a key that is not RSA";
			return (-1);
		}
		/*
		 * The encoded message (RFC 8017 9.1.1): the modulus's
		 * size, the bits above emBits clear, 0xbc last.  Its hash
		 * cannot be checked here without the message's digest.
		 */
		bits = EVP_PKEY_get_bits(pkey);
		if (bits <= 0 ||
		    req->len != (uint32_t)EVP_PKEY_get_size(pkey)) {
			*why = "not the modulus's size";
			return (-1);
		}
		if (em[req->len - 1] != 0xbc ||
		    (em[0] & (0xff << (8 - (8 * (int)req->len -
		    (bits - 1))))) != 0) {
			*why = "not a PSS encoding";
			return (-1);
		}
		return (0);
	default:
		*why = "unknown operation";
		return (-1);
	}
}

static void
ca_keys_free(struct ca_key *k, size_t *n)
{
	size_t	 i;

	for (i = 0; i < *n; i++) {
		EVP_PKEY_CTX_free(k[i].ctx);
		EVP_PKEY_free(k[i].pkey);
		k[i].ctx = NULL;
		k[i].pkey = NULL;
	}
	*n = 0;
}

static int
ca_conf_keypair(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	Mezite__Keypair	*kp;
	EVP_PKEY	*pkey = NULL;
	BIO		*bio = NULL;

	kp = pb_unpack(&mezite__keypair__descriptor, imsg);
	pb_wipe(imsg);
	if (kp == NULL)
		return (-1);
	if (npend == CA_KEYS_MAX) {
		log_warnx("keypair %s: more than %d keys", kp->name,
		    CA_KEYS_MAX);
		goto done;
	}
	if ((bio = BIO_new_mem_buf(kp->key.data, (int)kp->key.len)) == NULL ||
	    (pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL ||
	    ca_keyid(pkey, pend[npend].id) == -1) {
		log_warnx("keypair %s: cannot load the key", kp->name);
		EVP_PKEY_free(pkey);
		goto done;
	}
	pend[npend++].pkey = pkey;
 done:
	ERR_clear_error();
	BIO_free(bio);
	if (kp->key.len > 0)
		explicit_bzero(kp->key.data, kp->key.len);
	pb_free(kp);
	return (0);
}

static int
ca_conf_end(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	ca_keys_free(keys, &nkeys);
	memcpy(keys, pend, sizeof(keys));
	nkeys = npend;
	npend = 0;
	explicit_bzero(pend, sizeof(pend));
	log_debug("holding %zu keys", nkeys);
	return (0);
}

/* A master's channel, answered on its own until that master closes it. */
static int
ca_channel(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	struct ca_chan	*c;
	int		 fd = imsg_get_fd(imsg);

	if (nchans == CA_CHANS_MAX) {
		log_warnx("more than %d master channels: one refused",
		    CA_CHANS_MAX);
		close(fd);
		return (0);
	}
	if (fd_nonblock(fd) == -1) {
		log_warn("master channel");
		close(fd);
		return (0);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal(__func__);
	c->fd = fd;
	event_set(&c->ev, fd, EV_READ | EV_PERSIST, ca_request, c);
	event_add(&c->ev, NULL);
	chans[nchans++] = c;
	log_debug("%zu master channel%s", nchans, nchans == 1 ? "" : "s");
	return (0);
}

/* A master let go of its channel; a draining ca goes after the last. */
static void
ca_chan_close(struct ca_chan *c)
{
	size_t	 i;

	for (i = 0; i < nchans; i++)
		if (chans[i] == c)
			break;
	if (i == nchans)
		fatalx("%s: not a channel", __func__);
	chans[i] = chans[--nchans];
	chans[nchans] = NULL;
	event_del(&c->ev);
	close(c->fd);
	free(c);
	if (draining && nchans == 0) {
		ca_keys_free(keys, &nkeys);
		exit(0);
	}
}

/*
 * Go once no master can ask any more: at once if none holds a channel,
 * else when the last lets go of its own (it was given a new ca's, or
 * it exited), so that no handshake under way loses its signature.
 */
static int
ca_drain(struct proc_chan *ch, struct imsg *imsg, void *msg)
{
	if (nchans > 0) {
		draining = 1;
		return (0);
	}
	ca_keys_free(keys, &nkeys);
	exit(0);
}

static void
ca_sign(const struct ca_req *req, struct ca_rep *rep)
{
	struct ca_key	*k = NULL;
	EVP_PKEY_CTX	*ctx = NULL, *tmp = NULL;
	const char	*why;
	size_t		 i, siglen = sizeof(rep->sig);
	int		 ok = 0;

	rep->len = -1;
	for (i = 0; i < nkeys; i++)
		if (memcmp(keys[i].id, req->key, CA_KEYID_LEN) == 0) {
			k = &keys[i];
			break;
		}
	if (k == NULL) {
		log_warnx("refused a request for a key not held");
		return;
	}
	if (ca_req_check(req, k->pkey, &why) == -1) {
		log_warnx("refused a request: %s", why);
		return;
	}
	/*
	 * Fetching the implementation costs about as much as an ECDSA
	 * signature: ECDSA's context is kept.  RSA's paddings differ from
	 * one request to the next, and its signature costs far more.
	 */
	if (req->op == CA_ECDSA && k->ctx != NULL)
		ctx = k->ctx;
	else if ((ctx = tmp = EVP_PKEY_CTX_new(k->pkey, NULL)) == NULL ||
	    EVP_PKEY_sign_init(ctx) <= 0)
		goto done;
	else if (req->op == CA_ECDSA) {
		k->ctx = ctx;
		tmp = NULL;
	}
	switch (req->op) {
	case CA_RSA_PKCS1:
		if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_signature_md(ctx,
		    EVP_get_digestbynid(req->nid)) <= 0)
			goto done;
		break;
	case CA_RSA_PSS:
		if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) <= 0)
			goto done;
		break;
	}
	if (EVP_PKEY_sign(ctx, rep->sig, &siglen, req->data, req->len) <= 0 ||
	    siglen > sizeof(rep->sig))
		goto done;
	rep->len = (int32_t)siglen;
	ok = 1;
 done:
	if (!ok)
		log_warnx("signing failed");
	ERR_clear_error();
	EVP_PKEY_CTX_free(tmp);
}

static void
ca_request(int fd, short event, void *arg)
{
	struct ca_req	 req;
	struct ca_rep	 rep;
	ssize_t		 n;

	memset(&req, 0, sizeof(req));
	if ((n = recv(fd, &req, sizeof(req), 0)) == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		log_warn("master channel");
		n = 0;
	}
	if (n == 0) {
		/* The master left; the next one gets a channel of its own. */
		ca_chan_close(arg);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.id = req.id;
	rep.len = -1;
	if ((size_t)n != sizeof(req))
		log_warnx("refused a request of %zd bytes", n);
	else
		ca_sign(&req, &rep);
	explicit_bzero(&req, sizeof(req));
	if (send(fd, &rep, sizeof(rep), MSG_NOSIGNAL | MSG_DONTWAIT) == -1)
		log_warn("master channel: answer lost");
}

static const struct proc_msg ca_parent_msgs[] = {
	/* Unpacked by the handler, which wipes the key's bytes. */
	{ IMSG_CONF_KEYPAIR, PROC_LEN_ANY, NULL, PROC_FD_NONE,
	    ca_conf_keypair },
	{ IMSG_CONF_END, 0, NULL, PROC_FD_NONE, ca_conf_end },
	{ IMSG_CA_CHANNEL, 0, NULL, PROC_FD_NEEDED, ca_channel },
	{ IMSG_DRAIN, 0, NULL, PROC_FD_NONE, ca_drain },
	{ IMSG_LOG_VERBOSE, sizeof(int), NULL, PROC_FD_NONE,
	    proc_log_verbose },
};

static const struct proc_peer ca_from_parent = {
	"the supervisor", 1, ca_parent_msgs, nitems(ca_parent_msgs),
	0, CA_MAXSIZE, 1
};

static void
ca_parent_closed(struct proc_chan *ch)
{
	ca_keys_free(keys, &nkeys);
	fatalx("the supervisor went away");
}

void
ca(const char *user, const char *root)
{
	if (fd_nonblock(PROC_PARENT_FD) == -1)
		fatal("fd_nonblock");
	proc_drop("ca", user, root);
	/* Nothing may trace us or dump what we hold, whatever the user. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl");
	sandbox_ca();

	event_init();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	if (proc_chan_event(&parent, PROC_PARENT_FD, &ca_from_parent,
	    "supervisor", NULL, ca_parent_closed) == -1)
		fatal("supervisor channel");
	imsgbuf_set_wipe(&parent.ibuf);
	event_dispatch();
	exit(0);
}

/*
 * The master's side: keys made of the certificates' public keys whose
 * signing is a round trip to the ca process.
 */

static int		 ca_fd = -1;
static uint32_t		 ca_seq;
static int		 ca_stalled;	/* a request is still unanswered */
static int		 ec_idx = -1, rsa_idx = -1;
static EC_KEY_METHOD	*ec_meth;
static RSA_METHOD	*rsa_meth;

void
ca_client_set(int fd)
{
	if (ca_fd != -1)
		close(ca_fd);
	ca_fd = fd;
	ca_stalled = 0;
}

static int64_t
ca_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/*
 * After a request went unanswered, whether the answer has come since:
 * the ca process works again.  Waiting for it at every handshake would
 * stop the master for CA_TIMEOUT each time, and every session it relays
 * with it, while the ca process is stuck; until it answers, handshakes
 * fail at once instead.
 */
static int
ca_answered(struct ca_rep *rep)
{
	ssize_t	 n;

	while ((n = recv(ca_fd, rep, sizeof(*rep), MSG_DONTWAIT)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return (0);
		if (n == -1) {
			log_warn("ca channel");
			break;
		}
		log_info("the ca process answers again");
		ca_stalled = 0;
		return (1);
	}
	log_warnx("the ca process went away");
	close(ca_fd);
	ca_fd = -1;
	return (0);
}

/* One round trip; the signature's length, or -1. */
static int
ca_call(struct ca_req *req, struct ca_rep *rep)
{
	struct pollfd	 pfd;
	int64_t		 deadline, left;
	ssize_t		 n;
	int		 r;

	if (ca_fd != -1 && ca_stalled && !ca_answered(rep))
		return (-1);
	if (ca_fd == -1) {
		log_warnx("no ca process: the handshake fails");
		return (-1);
	}
	req->id = ++ca_seq;
	if (send(ca_fd, req, sizeof(*req), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)sizeof(*req)) {
		log_warn("ca channel");
		/* Full: the ca is behind, this handshake fails; else gone. */
		if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)
			return (-1);
		goto gone;
	}
	deadline = ca_ms() + CA_TIMEOUT;
	for (;;) {
		pfd.fd = ca_fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if ((left = deadline - ca_ms()) < 0)
			left = 0;
		if ((r = poll(&pfd, 1, (int)left)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("ca channel");
			return (-1);
		}
		if (r == 0) {
			log_warnx("the ca process did not answer in %d ms: "
			    "handshakes fail until it does", CA_TIMEOUT);
			ca_stalled = 1;
			return (-1);
		}
		n = recv(ca_fd, rep, sizeof(*rep), MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			log_warnx("the ca process went away");
			goto gone;
		}
		if (n != (ssize_t)sizeof(*rep))
			return (-1);
		if (rep->id == req->id)
			break;
		/* A late answer to a request that timed out. */
	}
	if (rep->len <= 0 || rep->len > CA_DATA_MAX) {
		log_warnx("the ca process refused to sign");
		return (-1);
	}
	return (rep->len);
 gone:
	/* Until the supervisor sends the restarted one's channel. */
	close(ca_fd);
	ca_fd = -1;
	return (-1);
}

static int
ca_ecdsa_sign(int type, const unsigned char *dgst, int dlen,
    unsigned char *sig, unsigned int *siglen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *ec)
{
	struct ca_req	 req;
	struct ca_rep	 rep;
	const uint8_t	*id;
	int		 n;

	if ((id = EC_KEY_get_ex_data(ec, ec_idx)) == NULL || dlen <= 0 ||
	    dlen > CA_DATA_MAX)
		return (0);
	memset(&req, 0, sizeof(req));
	req.op = CA_ECDSA;
	req.len = dlen;
	memcpy(req.key, id, CA_KEYID_LEN);
	memcpy(req.data, dgst, dlen);
	if ((n = ca_call(&req, &rep)) == -1 || n > ECDSA_size(ec))
		return (0);
	memcpy(sig, rep.sig, n);
	*siglen = n;
	return (1);
}

static ECDSA_SIG *
ca_ecdsa_do_sign(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *ec)
{
	unsigned char		 sig[CA_DATA_MAX];
	const unsigned char	*p = sig;
	unsigned int		 siglen;

	if (ECDSA_size(ec) > (int)sizeof(sig) ||
	    ca_ecdsa_sign(0, dgst, dlen, sig, &siglen, kinv, r, ec) != 1)
		return (NULL);
	return (d2i_ECDSA_SIG(NULL, &p, siglen));
}

static int
ca_rsa_sign(int type, const unsigned char *m, unsigned int mlen,
    unsigned char *sig, unsigned int *siglen, const RSA *rsa)
{
	struct ca_req	 req;
	struct ca_rep	 rep;
	const uint8_t	*id;
	int		 n;

	if ((id = RSA_get_ex_data(rsa, rsa_idx)) == NULL ||
	    mlen > CA_DATA_MAX)
		return (0);
	memset(&req, 0, sizeof(req));
	req.op = CA_RSA_PKCS1;
	req.nid = type;
	req.len = mlen;
	memcpy(req.key, id, CA_KEYID_LEN);
	memcpy(req.data, m, mlen);
	if ((n = ca_call(&req, &rep)) == -1 || n > RSA_size(rsa))
		return (0);
	memcpy(sig, rep.sig, n);
	*siglen = n;
	return (1);
}

/* RSA-PSS: OpenSSL encodes the block and asks for the raw operation. */
static int
ca_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	struct ca_req	 req;
	struct ca_rep	 rep;
	const uint8_t	*id;
	int		 n;

	if (padding != RSA_NO_PADDING ||
	    (id = RSA_get_ex_data(rsa, rsa_idx)) == NULL || flen <= 0 ||
	    flen > CA_DATA_MAX)
		return (-1);
	memset(&req, 0, sizeof(req));
	req.op = CA_RSA_PSS;
	req.len = flen;
	memcpy(req.key, id, CA_KEYID_LEN);
	memcpy(req.data, from, flen);
	if ((n = ca_call(&req, &rep)) == -1 || n > RSA_size(rsa))
		return (-1);
	memcpy(to, rep.sig, n);
	return (n);
}

static void
ca_exfree(void *owner, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	free(ptr);
}

static int
ca_methods(void)
{
	if (ec_meth != NULL)
		return (0);
	if ((ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL,
	    ca_exfree)) == -1 ||
	    (rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL,
	    ca_exfree)) == -1 ||
	    (ec_meth = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) == NULL ||
	    (rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) == NULL)
		return (-1);
	EC_KEY_METHOD_set_sign(ec_meth, ca_ecdsa_sign, NULL, ca_ecdsa_do_sign);
	if (RSA_meth_set1_name(rsa_meth, "mezite ca") != 1 ||
	    RSA_meth_set_sign(rsa_meth, ca_rsa_sign) != 1 ||
	    RSA_meth_set_priv_enc(rsa_meth, ca_rsa_priv_enc) != 1)
		return (-1);
	return (0);
}

/* A key for the certificate whose signing goes to the ca process. */
EVP_PKEY *
ca_client_key(X509 *cert)
{
	EVP_PKEY	*pub, *pkey = NULL;
	EC_KEY		*ec = NULL;
	RSA		*rsa = NULL;
	uint8_t		*id = NULL;

	if (ca_methods() == -1 || (pub = X509_get0_pubkey(cert)) == NULL ||
	    (id = malloc(CA_KEYID_LEN)) == NULL ||
	    ca_keyid(pub, id) == -1 || (pkey = EVP_PKEY_new()) == NULL)
		goto fail;
	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_EC:
		/* A copy: the certificate's own key keeps its method. */
		if (EVP_PKEY_get0_EC_KEY(pub) == NULL ||
		    (ec = EC_KEY_dup(EVP_PKEY_get0_EC_KEY(pub))) == NULL ||
		    EC_KEY_set_method(ec, ec_meth) != 1 ||
		    EC_KEY_set_ex_data(ec, ec_idx, id) != 1)
			goto fail;
		id = NULL;
		if (EVP_PKEY_assign_EC_KEY(pkey, ec) != 1)
			goto fail;
		ec = NULL;
		break;
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get0_RSA(pub) == NULL ||
		    (rsa = RSAPublicKey_dup(EVP_PKEY_get0_RSA(pub))) == NULL ||
		    RSA_set_method(rsa, rsa_meth) != 1 ||
		    RSA_set_ex_data(rsa, rsa_idx, id) != 1)
			goto fail;
		id = NULL;
		if (EVP_PKEY_assign_RSA(pkey, rsa) != 1)
			goto fail;
		rsa = NULL;
		break;
	default:
		goto fail;
	}
	return (pkey);
 fail:
	free(id);
	EC_KEY_free(ec);
	RSA_free(rsa);
	EVP_PKEY_free(pkey);
	return (NULL);
}
