//go:build !linux

package db

// lowerThreadPriority does nothing where a thread's priority cannot be set
// on its own: background work then runs at the process's priority.
func lowerThreadPriority() {}
