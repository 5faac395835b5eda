/*
 * Password hashes: yescrypt, in crypt(3)'s format ("$y$...").
 */

#ifndef MEZITE_PASSWD_H
#define MEZITE_PASSWD_H

#include <stddef.h>

/*
 * The longest password, in bytes.  libxcrypt refuses a passphrase of
 * CRYPT_MAX_PASSPHRASE_SIZE (512) bytes or more; passwd.c checks that
 * the two agree.
 */
#define PASSWD_MAX		511
#define PASSWD_HASH_SIZE	128	/* room for what passwd_hash() writes */

/*
 * passwd_init makes the dummy hash that passwd_check(pw, NULL) checks
 * against (otherwise made by the first such call, which then takes
 * twice as long): call it before the first login.  0, or -1.
 */
int	 passwd_init(void);

/* Hash password into out with a new salt: 0, or -1 (logged). */
int	 passwd_hash(const char *, char *, size_t);

/*
 * 1 if password matches hash, 0 otherwise.  With hash NULL (no such
 * user), 0 after as long as a check against a real hash takes, so that
 * the time of an answer does not tell whether a user exists.
 */
int	 passwd_check(const char *, const char *);

#endif /* MEZITE_PASSWD_H */
