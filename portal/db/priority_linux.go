package db

import "syscall"

// lowerThreadPriority gives the calling OS thread the lowest scheduling
// priority (nice 19). On Linux a nice value belongs to a thread, and
// PRIO_PROCESS with a thread id sets that thread's alone.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19) // best effort
}
