#define _GNU_SOURCE
#include "process_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>

/* Shared by the entry points: a NULL `directory`/`log_path` keeps the caller's; `new_group` makes the child a group leader. */
static int spawn(const char *path, char *const argv[], char *const envp[],
                 const char *directory, const char *input_path, const char *log_path, int new_group, pid_t *pid) {
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_t actions;
    sigset_t all, none;
    int result;

    if ((result = posix_spawnattr_init(&attributes)) != 0) return result;
    if ((result = posix_spawn_file_actions_init(&actions)) != 0) {
        posix_spawnattr_destroy(&attributes);
        return result;
    }
    /* The hub ignores SIGTERM and SIGINT to handle them itself; children must not inherit that. */
    sigfillset(&all);
    sigemptyset(&none);
    short flags = (new_group ? POSIX_SPAWN_SETPGROUP : 0) | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    if ((result = posix_spawnattr_setflags(&attributes, flags)) != 0) goto done;
    if (new_group && (result = posix_spawnattr_setpgroup(&attributes, 0)) != 0) goto done;
    if ((result = posix_spawnattr_setsigdefault(&attributes, &all)) != 0) goto done;
    if ((result = posix_spawnattr_setsigmask(&attributes, &none)) != 0) goto done;
    if (directory && (result = posix_spawn_file_actions_addchdir_np(&actions, directory)) != 0) goto done;
    if ((result = posix_spawn_file_actions_addopen(&actions, 0, input_path, O_RDONLY, 0)) != 0) goto done;
    if (log_path) {
        if ((result = posix_spawn_file_actions_addopen(&actions, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0640)) != 0) goto done;
        if ((result = posix_spawn_file_actions_adddup2(&actions, 1, 2)) != 0) goto done;
    }
    if ((result = posix_spawn_file_actions_addclosefrom_np(&actions, 3)) != 0) goto done;
    result = posix_spawnp(pid, path, &actions, &attributes, argv, envp);
done:
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return result;
}

int envhub_spawn(const char *path, char *const argv[], char *const envp[],
                 const char *directory, const char *log_path, pid_t *pid) {
    return spawn(path, argv, envp, directory, "/dev/null", log_path, 1, pid);
}

int envhub_spawn_with_input(const char *path, char *const argv[], char *const envp[],
                            const char *input_path, const char *log_path, pid_t *pid) {
    return spawn(path, argv, envp, NULL, input_path, log_path, 1, pid);
}

int envhub_spawn_child(const char *path, char *const argv[], char *const envp[], pid_t *pid) {
    return spawn(path, argv, envp, NULL, "/dev/null", NULL, 0, pid);
}
