package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/phasemark"
)

// applyTable replaces mxc's table in the namespace with ts in one netlink
// batch: the kernel applies it atomically, so the namespace is never
// without rules between the old table and the new one.
func applyTable(nsfd int, ts *tableSpec) error {
	// One socket for the look-up and the batch: each socket in another
	// namespace costs a setns round trip.
	nc, err := dialNF(nsfd)
	if err != nil {
		return err
	}
	defer nc.close()
	// A table left by an earlier, crashed Setup is replaced in the same
	// batch (add+delete+add works whether or not one exists). Only then:
	// a batch that deletes a table costs the kernel several milliseconds
	// more (the commit waits for readers of the old one), and a namespace
	// fresh from create never has one.
	exists, err := nc.tableExists()
	if err != nil {
		return err
	}
	phasemark.Mark("table: looked up")
	msgs, err := tableBatch(ts, exists)
	if err != nil {
		return err
	}
	phasemark.Mark("table: batch built")
	if err := nc.sendBatch(msgs); err != nil {
		return fmt.Errorf("program nftables table inet %s: %w", TableName, err)
	}
	phasemark.Mark("table: flushed")
	return nil
}

// tableBatch is the batch that installs ts, replacing a table of the same
// name first when replace is set.
func tableBatch(ts *tableSpec, replace bool) ([]netlink.Message, error) {
	msgs, err := captureBatch(func(c *nftables.Conn) error {
		if replace {
			c.AddTable(ts.table)
			c.DelTable(ts.table)
		}
		c.AddTable(ts.table)
		for _, s := range ts.sets {
			if err := c.AddSet(s.set, s.elems); err != nil {
				return fmt.Errorf("set %s: %w", s.set.Name, err)
			}
		}
		for _, ch := range ts.chains {
			c.AddChain(ch)
		}
		for _, r := range ts.rules {
			c.AddRule(r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nftables table inet %s: %w", TableName, err)
	}
	return msgs, nil
}

// deleteTable removes mxc's table from the namespace; a missing table is
// not an error.
func deleteTable(nsfd int) error {
	c, err := nftables.New(nftables.WithNetNSFd(nsfd))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	c.DelTable(t)
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete nftables table inet %s: %w", TableName, err)
	}
	return nil
}

// tableExists reports whether mxc's table is in the namespace.
func tableExists(nsfd int) (bool, error) {
	nc, err := dialNF(nsfd)
	if err != nil {
		return false, err
	}
	defer nc.close()
	return nc.tableExists()
}

// setWriter adds learnt addresses to the name sets of a table. It is the
// only writer of those sets, so it remembers when each element expires and
// never shortens one: two names answering the same address with different
// TTLs leave the longer lifetime in place.
type setWriter struct {
	mu     sync.Mutex
	conn   *nftables.Conn
	nsfd   int
	table  *nftables.Table
	expiry map[elemKey]time.Time
	now    func() time.Time
}

// renewSlack is how much shorter than a new answer's lifetime an element
// may live before the writer renews it (less than elementGrace, so that
// clients never outlive their element).
const renewSlack = time.Second

type elemKey struct {
	set  string
	addr netip.Addr
}

func newSetWriter(nsfd int) (*setWriter, error) {
	c, err := nftables.New(nftables.WithNetNSFd(nsfd), nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &setWriter{
		conn:   c,
		nsfd:   nsfd,
		table:  &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet},
		expiry: map[elemKey]time.Time{},
		now:    time.Now,
	}, nil
}

func (w *setWriter) Close() error { return w.conn.CloseLasting() }

func (w *setWriter) redial() error {
	_ = w.conn.CloseLasting()
	c, err := nftables.New(nftables.WithNetNSFd(w.nsfd), nftables.AsLasting())
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	w.conn = c
	return nil
}

// learnt is one address to allow through one set for a time.
type learnt struct {
	set     string
	addr    netip.Addr
	timeout time.Duration
}

// add puts every element in the kernel in one batch before returning, so
// that the client that receives the DNS answer afterwards can connect at
// once. An element already present with a later expiry is left alone; one
// that must live longer is deleted and re-added in the same batch (older
// kernels ignore a new timeout on an existing element).
func (w *setWriter) add(items []learnt) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	if len(w.expiry) > 65536 {
		for k, t := range w.expiry {
			if t.Before(now) {
				delete(w.expiry, k)
			}
		}
	}
	var fresh, renew []learnt
	for _, it := range items {
		k := elemKey{it.set, it.addr}
		exp := now.Add(it.timeout)
		old, ok := w.expiry[k]
		switch {
		case ok && old.After(now.Add(time.Second)) && !old.Before(exp.Add(-renewSlack)):
			// Present and lives about as long: a name asked again within
			// a second costs no netlink round trip.
			continue
		case ok && old.After(now.Add(time.Second)):
			renew = append(renew, it)
		default:
			fresh = append(fresh, it)
		}
	}
	if len(fresh)+len(renew) == 0 {
		return nil
	}
	queue := func(del bool, its []learnt) error {
		for _, it := range its {
			s := &nftables.Set{Table: w.table, Name: it.set, KeyType: nftables.TypeIPAddr, HasTimeout: true}
			if it.addr.Is6() {
				s.KeyType = nftables.TypeIP6Addr
			}
			el := []nftables.SetElement{{Key: it.addr.AsSlice(), Timeout: it.timeout}}
			var err error
			if del {
				err = w.conn.SetDeleteElements(s, el)
			} else {
				err = w.conn.SetAddElements(s, el)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := queue(true, renew); err != nil {
		return err
	}
	if err := queue(false, append(renew, fresh...)); err != nil {
		return err
	}
	err := w.conn.Flush()
	if err != nil {
		// A failed batch may leave unread acks on the socket: start over on
		// a new one. If an element expired in the kernel a moment before our
		// record of it, the delete failed and took the batch with it, so the
		// retry only adds.
		if rerr := w.redial(); rerr != nil {
			return errors.Join(err, rerr)
		}
		if err = queue(false, append(renew, fresh...)); err == nil {
			err = w.conn.Flush()
		}
	}
	if err != nil {
		return fmt.Errorf("add addresses to allow sets: %w", err)
	}
	for _, it := range append(renew, fresh...) {
		w.expiry[elemKey{it.set, it.addr}] = now.Add(it.timeout)
	}
	return nil
}
