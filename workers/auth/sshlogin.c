/*
 * The SSH certificate that a login brings: for the key the client
 * sent with Login, principals the logins of every role the user has
 * (on any node: sshd knows nothing of the roles' node patterns), key id
 * naming the user and the serial of the TLS certificate of the same
 * login, valid for that certificate's window.
 */

#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "log.h"
#include "sshcert.h"

static int	 strv_add(struct store_strv *, const char *);

static int
strv_add(struct store_strv *sv, const char *s)
{
	char	**v;
	size_t	 i;

	for (i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return (0);
	if ((v = reallocarray(sv->v, sv->n + 1, sizeof(*v))) == NULL)
		return (-1);
	sv->v = v;
	if ((v[sv->n] = strdup(s)) == NULL)
		return (-1);
	sv->n++;
	return (0);
}

/*
 * The logins of the user's roles, each once, in the order the roles
 * name them; roles that are gone are passed over.
 */
int
sshlogin_principals(struct store *st, const struct store_strv *roles,
    struct store_strv *out)
{
	struct store_role	 r;
	size_t			 i, k;
	int			 rv;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < roles->n; i++) {
		memset(&r, 0, sizeof(r));
		if ((rv = store_role_get(st, roles->v[i], &r)) ==
		    STORE_NOTFOUND)
			continue;
		if (rv != 0)
			goto fail;
		for (k = 0; k < r.logins.n; k++) {
			if (out->n == SSHCERT_PRINCIPALS_MAX)
				break;
			if (strv_add(out, r.logins.v[k]) == -1) {
				store_role_clear(&r);
				goto fail;
			}
		}
		store_role_clear(&r);
	}
	return (0);
 fail:
	store_strv_clear(out);
	return (-1);
}

/*
 * Certify key for the user u logged in with the TLS certificate sc.
 * 0: *line is the certificate line (to free) and serial its serial;
 * 1: none is issued, note says why; -1: failed, note says so (logged).
 */
int
sshlogin_certify(struct sshca *ca, struct store *st,
    const struct store_user *u, const uint8_t key[SSHCERT_ED25519_LEN],
    const struct store_cert *sc, char **line, uint64_t *serial,
    char *note, size_t notelen)
{
	struct sshcert		 c;
	struct store_strv	 logins;
	char			 keyid[SSHCERT_KEYID_MAX];
	int			 ret = -1;

	*line = NULL;
	*note = '\0';
	if (sshlogin_principals(st, &u->roles, &logins) == -1) {
		(void)strlcpy(note, "the store failed", notelen);
		return (-1);
	}
	if (logins.n == 0) {
		(void)snprintf(note, notelen, "no SSH certificate: the roles "
		    "of user %s name no login", u->name);
		return (1);
	}
	memset(&c, 0, sizeof(c));
	memcpy(c.key, key, sizeof(c.key));
	(void)snprintf(keyid, sizeof(keyid), "mezite user %s tls-serial %s",
	    u->name, sc->serial);
	c.key_id = keyid;
	c.principals = (const char *const *)logins.v;
	c.nprincipals = logins.n;
	c.valid_after = sc->not_before < 0 ? 0 : (uint64_t)sc->not_before;
	c.valid_before = (uint64_t)sc->not_after;
	if (sshcert_random(&c) == -1 ||
	    sshcert_sign(sshca_key(ca), &c, u->name, line, NULL) == -1) {
		(void)strlcpy(note, "no SSH certificate: the SSH user CA "
		    "failed", notelen);
		goto done;
	}
	*serial = c.serial;
	ret = 0;
 done:
	explicit_bzero(&c, sizeof(c));
	store_strv_clear(&logins);
	return (ret);
}
