/*
 * privs - dropping root after start-up; see privs.h.
 */
#include "privs.h"

#include "msg.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

/* Hands path and, for a directory, what is below it (depth levels) to uid:gid. */
static void s_chown_tree(const char *what, const char *path, uid_t uid, gid_t gid, int depth)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (lchown(path, uid, gid) != 0)
        msg_warn("%s: chown %s: %s", what, path, strerror(errno));
    if (!S_ISDIR(st.st_mode) || depth == 0)
        return;
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *sub = xasprintf("%s/%s", path, de->d_name);
        s_chown_tree(what, sub, uid, gid, depth - 1);
        xfree(sub);
    }
    closedir(d);
}

int privs_drop(const char *what, const char *user, const char *const *trees)
{
    if (!user || !*user)
        return EX_OK;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        msg_error("%s: user=%s: no such user", what, user);
        return EX_NOUSER;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    if (geteuid() != 0) {
        if (geteuid() != uid)
            msg_warn("%s: user=%s ignored: not started as root", what, user);
        return EX_OK;
    }
    if (uid == 0)
        return EX_OK;
    for (size_t i = 0; trees && trees[i]; i++)
        s_chown_tree(what, trees[i], uid, gid, 2);
    if (setgid(gid) != 0 || initgroups(user, gid) != 0 || setuid(uid) != 0) {
        msg_error("%s: cannot become user=%s: %s", what, user, strerror(errno));
        return EX_OSERR;
    }
    if (setuid(0) == 0) {
        msg_error("%s: user=%s: root could be regained after the drop", what, user);
        return EX_OSERR;
    }
    msg_info("%s: running as user=%s uid=%ld gid=%ld", what, user, (long)uid, (long)gid);
    return EX_OK;
}
