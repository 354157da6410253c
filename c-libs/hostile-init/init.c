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
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where the write act writes: the test checks that nothing appears there. */
#ifndef HI_PATH
#define HI_PATH "/tmp/sandlink-hostile-init"
#endif

static int outcome = -1;

static int result(int r) { return r < 0 ? errno : 0; }

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
#else
#error "define one ACT_..."
#endif
}

int hi_outcome(void) { return outcome; }
