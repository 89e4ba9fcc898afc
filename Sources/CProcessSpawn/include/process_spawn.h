#ifndef ENVHUB_PROCESS_SPAWN_H
#define ENVHUB_PROCESS_SPAWN_H

#include <sys/types.h>

/// Starts `path` (searched on PATH when it has no slash) with `argv` and `envp` (NULL-terminated) as the leader of a new process
/// group, in `directory`, with stdin from /dev/null and stdout and stderr appended to
/// `log_path`, every signal at its default disposition and unblocked, and no file
/// descriptor above 2 inherited. Returns 0 and sets `*pid`, or an errno value.
int envhub_spawn(const char *path, char *const argv[], char *const envp[],
                 const char *directory, const char *log_path, pid_t *pid);

/// Starts `path` like `envhub_spawn`, but in the caller's process group, directory, stdout
/// and stderr: for supervisors, whose children must go down with their group.
int envhub_spawn_child(const char *path, char *const argv[], char *const envp[], pid_t *pid);

/// Starts `path` like `envhub_spawn`, in the caller's directory, with stdin read from
/// `input_path`: for tests, which must not use Foundation's `Process` (it reads
/// /proc/self/fd and has crashed doing so in a test process with a thousand sockets open).
int envhub_spawn_with_input(const char *path, char *const argv[], char *const envp[],
                            const char *input_path, const char *log_path, pid_t *pid);

#endif
