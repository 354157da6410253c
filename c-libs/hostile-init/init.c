/*
 * A library whose initialiser, run by the loader before any function is
 * called, attempts one act a confined worker must refuse. It is compiled
 * once per act (-DACT_...), and `hi_outcome` tells what the act returned:
 * 0 if it succeeded, else the errno it failed with. A worker that is killed
 * for the attempt never gets to answer.
 *
 * The acts are harmless when they succeed: the file written is the test's
 * own, the signal sent to the host is 0 (a probe), the child exits at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <dlfcn.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where the write act writes: the test checks that nothing appears there. */
#ifndef HI_MEMORY
#define HI_MEMORY (512u << 20)
#endif

#ifndef HI_PATH
#define HI_PATH "/tmp/sandlink-hostile-init"
#endif

static int outcome = -1;

__attribute__((unused)) static int result(int r) { return r < 0 ? errno : 0; }

__attribute__((constructor)) static void hostile_init(void) {
#if defined(ACT_WRITE)
    int fd = open(HI_PATH, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    outcome = result(fd);
    if (fd >= 0) {
        (void)write(fd, "written by an initialiser\n", 26);
        close(fd);
    }
#elif defined(ACT_READ)
    char buf[64];
    int fd = open("/etc/passwd", O_RDONLY);
    outcome = result(fd);
    if (fd >= 0) {
        outcome = result((int)read(fd, buf, sizeof buf));
        close(fd);
    }
#elif defined(ACT_SOCKET)
    int s = socket(AF_INET, SOCK_STREAM, 0);
    outcome = result(s);
    if (s >= 0)
        close(s);
#elif defined(ACT_FORK)
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    outcome = result(pid);
    if (pid > 0)
        waitpid(pid, NULL, 0);
#elif defined(ACT_EXEC)
    char *argv[] = {"/bin/true", NULL};
    outcome = result(execv("/bin/true", argv));
#elif defined(ACT_SIGNAL)
    outcome = result(kill(getppid(), 0));
#elif defined(ACT_PRLIMIT)
    /* How many processes it can name (prlimit64 reading their limits finds
     * them, whether or not it may read): the host and every other worker
     * are among them unless something hides them. Reading is harmless;
     * the attack it stands for set the host's RLIMIT_CPU to 0. */
    struct rlimit old;
    int seen = 0;
    for (pid_t pid = 1; pid < 65536; pid++)
        if (pid != getpid() && (prlimit(pid, RLIMIT_CPU, NULL, &old) == 0 || errno != ESRCH))
            seen++;
    outcome = seen;
#elif defined(ACT_SETOWN)
    /* Makes its parent the owner of the worker's reply pipe (descriptor
     * 4): with O_ASYNC, the kernel would then signal the parent on every
     * write, a signal seccomp never sees. The owner is only set, no
     * signal asked for. */
    outcome = result(fcntl(4, F_SETOWN, getppid()));
#elif defined(ACT_MEMORY)
    /* Touches HI_MEMORY bytes before any limit could be set after loading. */
    size_t n = (size_t)HI_MEMORY;
    /* Volatile: the compiler may not drop an allocation it cannot see used. */
    char *volatile p = malloc(n);
    outcome = p ? 0 : ENOMEM;
    if (p) {
        memset(p, 1, n);
        free(p);
    }
#elif defined(ACT_PROCMEM)
    /* Reads its parent's environment through /proc: the host's, without
     * namespaces (the host's memory would be one file further). */
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)getppid());
    int fd = open(path, O_RDONLY);
    outcome = result(fd);
    if (fd >= 0) {
        outcome = result((int)read(fd, buf, sizeof buf));
        close(fd);
    }
#elif defined(ACT_SIBLING)
    /* Reads another file of the directory it was loaded from. */
    Dl_info info;
    char self[4096], sibling[4200];
    outcome = EINVAL;
    if (dladdr((void *)hostile_init, &info) && info.dli_fname) {
        snprintf(self, sizeof self, "%s", info.dli_fname);
        snprintf(sibling, sizeof sibling, "%s/libhostile_init_write.so", dirname(self));
        int fd = open(sibling, O_RDONLY);
        outcome = result(fd);
        if (fd >= 0)
            close(fd);
    }
#elif defined(ACT_FDS)
    /* The descriptors open while it runs, as a bit mask of 0..30. */
    int mask = 0;
    for (int fd = 0; fd < 31; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            mask |= 1 << fd;
    outcome = mask;
#else
#error "define one ACT_..."
#endif
}

int hi_outcome(void) { return outcome; }
