/* See coracle_ns.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "coracle_ns.h"

int coracle_unshare(int flags)
{
    return unshare(flags) == 0 ? 0 : -errno;
}

int coracle_setns(int fd, int nstype)
{
    return setns(fd, nstype) == 0 ? 0 : -errno;
}

int coracle_mount(const char *source, const char *target, const char *fstype,
                  unsigned long flags, const char *data)
{
    return mount(source, target, fstype, flags, data) == 0 ? 0 : -errno;
}

int coracle_umount2(const char *target, int flags)
{
    return umount2(target, flags) == 0 ? 0 : -errno;
}

int coracle_sethostname(const char *name)
{
    return sethostname(name, strlen(name)) == 0 ? 0 : -errno;
}

static int pin(const char *kind, const char *path)
{
    char self[64];
    if (path == NULL)
        return 0;
    /* /proc/thread-self: the namespaces of this thread, not of the process. */
    strcpy(self, "/proc/thread-self/ns/");
    strcat(self, kind);
    return mount(self, path, NULL, MS_BIND, NULL) == 0 ? 0 : -errno;
}

int coracle_pin_new_namespaces(int flags, const char *net_path,
                               const char *ipc_path, const char *uts_path,
                               const char *hostname)
{
    int rc;
    if (unshare(flags) != 0)
        return -errno;
    if (hostname != NULL && (flags & CLONE_NEWUTS)) {
        if (sethostname(hostname, strlen(hostname)) != 0)
            return -errno;
    }
    rc = pin("net", (flags & CLONE_NEWNET) ? net_path : NULL);
    if (rc != 0)
        return rc;
    rc = pin("ipc", (flags & CLONE_NEWIPC) ? ipc_path : NULL);
    if (rc != 0)
        goto undo_net;
    rc = pin("uts", (flags & CLONE_NEWUTS) ? uts_path : NULL);
    if (rc != 0)
        goto undo_ipc;
    return 0;
undo_ipc:
    if ((flags & CLONE_NEWIPC) && ipc_path)
        umount2(ipc_path, MNT_DETACH);
undo_net:
    if ((flags & CLONE_NEWNET) && net_path)
        umount2(net_path, MNT_DETACH);
    return rc;
}
