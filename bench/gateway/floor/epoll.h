#include <sys/epoll.h>
#include <netinet/tcp.h>
