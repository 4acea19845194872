package enforce

// asyncStep is a set-up step that runs in the background between two of
// the policy engine's hooks; whoever needs its result, or undoes it,
// waits for it first. A nil *asyncStep is a step that was never needed.
type asyncStep struct {
	done chan struct{}
	err  error
}

// goStep runs f in a goroutine.
func goStep(f func() error) *asyncStep {
	a := &asyncStep{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.err = f()
	}()
	return a
}

// wait returns f's error once f has returned.
func (a *asyncStep) wait() error {
	if a == nil {
		return nil
	}
	<-a.done
	return a.err
}
