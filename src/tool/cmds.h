/* cmds.h - the kpar tool's subcommands, one file each (src/tool/cmd_*.c).
 *
 * Each takes the arguments after its name (argv[0] is the subcommand) and
 * returns the process exit status.  Errors are printed by the command itself
 * as "kpar <cmd>: <message>" on stderr.
 */
#ifndef KPAR_TOOL_CMDS_H
#define KPAR_TOOL_CMDS_H

int kpar_cmd_list(int argc, char **argv);
int kpar_cmd_plan(int argc, char **argv);
int kpar_cmd_run(int argc, char **argv);
int kpar_cmd_worker(int argc, char **argv);
int kpar_cmd_report(int argc, char **argv);
int kpar_cmd_state(int argc, char **argv);
int kpar_cmd_image(int argc, char **argv);
int kpar_cmd_fetch(int argc, char **argv);
int kpar_cmd_cache(int argc, char **argv);
int kpar_cmd_status(int argc, char **argv);
int kpar_cmd_cancel(int argc, char **argv);
int kpar_cmd_history(int argc, char **argv);

struct kpar_backend;
/* The backend KPAR_BACKEND names (local, k8s), or NULL. */
const struct kpar_backend *kpar_tool_backend(const char *name);

struct kpar_conf;
/* Seconds since this kpar started, kept in <state-dir>/time.<step> (list,
 * plan) so the run's summary can say what kpar's own steps cost. */
void kpar_tool_note_time(const struct kpar_conf *c, const char *step);
/* A step's noted seconds, or -1. */
double kpar_tool_read_time(const struct kpar_conf *c, const char *step);
double kpar_tool_elapsed(void);

/* Prints "kpar <cmd>: <kpar_error_last()>" and returns the exit status for rc. */
int kpar_tool_fail(const char *cmd, int rc);

#endif
