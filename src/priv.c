/*
 * priv.c - privileges after start-up: once the listeners are bound and the
 * keys loaded, switch from root to the configured user and group, drop
 * every capability, and set no_new_privs so nothing can regain them.
 */
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlsproxy.h"

/*
 * Empty the permitted, effective and inheritable capability sets (and the
 * ambient set): a non-root process started with CAP_NET_BIND_SERVICE
 * (systemd AmbientCapabilities=) needs it no more once it has bound.  When
 * capset is filtered (the unit's SystemCallFilter=~@privileged) and
 * CAP_NET_BIND_SERVICE is all there is, that one is kept; any other
 * capability left is an error.
 */
static int
priv_caps_clear(void)
{
	struct __user_cap_header_struct	h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct	d[_LINUX_CAPABILITY_U32S_3];
	const uint32_t			bind = 1u << CAP_NET_BIND_SERVICE;

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) == -1)
		return -1;
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (d[0].permitted == 0 && d[1].permitted == 0)
		return 0;
	if (d[0].permitted == bind && d[1].permitted == 0) {
		memset(d, 0, sizeof(d));
		if (syscall(SYS_capset, &h, d) == -1)
			log_debug("keeping CAP_NET_BIND_SERVICE: capset: %s",
			    strerror(errno));
		return 0;
	}
	memset(d, 0, sizeof(d));
	return (int)syscall(SYS_capset, &h, d);
}

/* Look up cfg->user and cfg->group; each problem goes to errs. */
static int
priv_lookup(const struct cfg *cfg, uid_t *uid, gid_t *gid,
    struct errlist *errs)
{
	struct passwd	*pw;
	struct group	*gr;
	int		 rc = 0;

	errno = 0;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		cfg_error(errs, cfg, cfg->user_loc, "cannot switch to user "
		    "\"%s\": %s", cfg->user, errno != 0 ? strerror(errno) :
		    "no such user (create it, e.g. useradd --system "
		    "--no-create-home mtlsproxy, or name an existing one)");
		rc = -1;
	} else {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
	if (cfg->group == NULL)
		return rc;
	errno = 0;
	if ((gr = getgrnam(cfg->group)) == NULL) {
		cfg_error(errs, cfg, cfg->group_loc, "cannot switch to group "
		    "\"%s\": %s", cfg->group, errno != 0 ? strerror(errno) :
		    "no such group");
		return -1;
	}
	*gid = gr->gr_gid;
	return rc;
}

/* The user and group a configuration names exist (for -t and check). */
int
priv_check(const struct cfg *cfg, struct errlist *errs)
{
	uid_t	uid;
	gid_t	gid;

	if (cfg->user == NULL)
		return 0;
	return priv_lookup(cfg, &uid, &gid, errs);
}

/*
 * Switch to cfg->user (and cfg->group, else the user's own group) when
 * running as root; accept it when already running as that user.  Then
 * drop capabilities and set no_new_privs in every case.  Call after
 * binding and loading keys, before any thread starts.  -1: start-up error.
 */
int
priv_drop(const struct cfg *cfg)
{
	struct errlist	errs = { NULL, 0 };
	uid_t		uid, ruid, euid, suid;
	gid_t		gid, rgid, egid, sgid;
	size_t		i;

	if (cfg->user != NULL) {
		if (priv_lookup(cfg, &uid, &gid, &errs) == -1) {
			for (i = 0; i < errs.n; i++)
				log_error("%s", errs.v[i]);
			errlist_free(&errs);
			return -1;
		}
		if (geteuid() != 0) {
			if (geteuid() != uid || getuid() != uid) {
				log_error("cannot switch to user \"%s\": not "
				    "running as root (start as root, or as "
				    "\"%s\" itself, or remove \"user\")",
				    cfg->user, cfg->user);
				return -1;
			}
			if (cfg->group != NULL && (getegid() != gid ||
			    getgid() != gid)) {
				log_error("cannot switch to group \"%s\": not "
				    "running as root", cfg->group);
				return -1;
			}
		} else if (uid == 0) {
			log_warnx("user \"%s\" is root: not dropping "
			    "privileges", cfg->user);
		} else {
			if (initgroups(cfg->user, gid) == -1) {
				log_errno(LOG_LEVEL_ERROR, "cannot switch to "
				    "user \"%s\": initgroups", cfg->user);
				return -1;
			}
			if (setresgid(gid, gid, gid) == -1) {
				log_errno(LOG_LEVEL_ERROR, "cannot switch to "
				    "group %u: setresgid", (unsigned)gid);
				return -1;
			}
			if (setresuid(uid, uid, uid) == -1) {
				log_errno(LOG_LEVEL_ERROR, "cannot switch to "
				    "user \"%s\": setresuid", cfg->user);
				return -1;
			}
			/* The drop must be permanent: root must be gone. */
			if (setuid(0) != -1 || seteuid(0) != -1 ||
			    setgid(0) != -1 ||
			    getresuid(&ruid, &euid, &suid) == -1 ||
			    getresgid(&rgid, &egid, &sgid) == -1 ||
			    ruid != uid || euid != uid || suid != uid ||
			    rgid != gid || egid != gid || sgid != gid) {
				log_error("cannot switch to user \"%s\": root "
				    "privileges could be regained after the "
				    "switch; refusing to run", cfg->user);
				return -1;
			}
			log_info("switched to user \"%s\" (uid %u, gid %u)",
			    cfg->user, (unsigned)uid, (unsigned)gid);
		}
	}
	if (geteuid() != 0 && priv_caps_clear() == -1) {
		log_errno(LOG_LEVEL_ERROR, "cannot drop capabilities");
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_errno(LOG_LEVEL_ERROR, "cannot set no_new_privs");
		return -1;
	}
	return 0;
}
