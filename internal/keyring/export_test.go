package keyring

// SetWaitHook makes f run whenever a caller starts waiting for a refresh that
// another caller runs. Set it before the ring is shared.
func (r *Ring) SetWaitHook(f func()) { r.waitHook = f }
