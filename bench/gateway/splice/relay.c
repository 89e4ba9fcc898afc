// bench/gateway/splice's relay: a reference, not envhub code. A TCP relay that forwards each
// accepted connection to 127.0.0.1:APP_PORT, one thread per direction, either through a pipe
// with splice(2) (the bytes never enter user space) or with read/write through a 256 KiB
// buffer (what any copying proxy does). Enough for curl downloads, nothing else: it answers
// the question "would splice between the sockets bring a proxy's streaming near direct's?"
//
//   relay LISTEN_PORT APP_PORT splice|copy
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { chunk = 1 << 20, copyBuffer = 1 << 18 };
static int useSplice;
static int appPort;

struct direction { int from, to; };

static void *pump(void *argument) {
    struct direction *d = argument;
    if (useSplice) {
        int pipeEnds[2];
        if (pipe(pipeEnds) < 0) { perror("pipe"); exit(1); }
        fcntl(pipeEnds[1], F_SETPIPE_SZ, chunk);
        for (;;) {
            ssize_t n = splice(d->from, NULL, pipeEnds[1], NULL, chunk, SPLICE_F_MOVE);
            if (n <= 0) break;
            while (n > 0) {
                ssize_t w = splice(pipeEnds[0], NULL, d->to, NULL, (size_t)n, SPLICE_F_MOVE);
                if (w <= 0) goto done;
                n -= w;
            }
        }
    done:
        close(pipeEnds[0]);
        close(pipeEnds[1]);
    } else {
        char *buffer = malloc(copyBuffer);
        for (;;) {
            ssize_t n = read(d->from, buffer, copyBuffer);
            if (n <= 0) break;
            for (char *p = buffer; n > 0;) {
                ssize_t w = write(d->to, p, (size_t)n);
                if (w <= 0) goto copied;
                n -= w;
                p += w;
            }
        }
    copied:
        free(buffer);
    }
    shutdown(d->to, SHUT_WR);
    shutdown(d->from, SHUT_RD);
    return NULL;
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void *serve(void *argument) {
    int client = (int)(intptr_t)argument;
    int app = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(appPort);
    if (connect(app, (struct sockaddr *)&a, sizeof a) == 0) {
        struct direction up = {client, app}, down = {app, client};
        pthread_t upThread;
        pthread_create(&upThread, NULL, pump, &up);
        pump(&down);
        pthread_join(upThread, NULL);
    }
    close(app);
    close(client);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: relay LISTEN_PORT APP_PORT splice|copy\n"); return 2; }
    appPort = atoi(argv[2]);
    useSplice = strcmp(argv[3], "splice") == 0;
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = loopback(atoi(argv[1]));
    if (bind(listener, (struct sockaddr *)&a, sizeof a) < 0 || listen(listener, 64) < 0) { perror("listen"); return 1; }
    for (;;) {
        int client = accept(listener, NULL, NULL);
        if (client < 0) continue;
        pthread_t thread;
        pthread_create(&thread, NULL, serve, (void *)(intptr_t)client);
        pthread_detach(thread);
    }
}
