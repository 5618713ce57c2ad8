package ddbtest

// PID is the pid of the DynamoDB Local this process started, or 0.
func PID() int {
	state.Lock()
	defer state.Unlock()
	if state.proc == nil {
		return 0
	}
	return state.proc.PID
}
