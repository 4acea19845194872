package egress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nfReplyWait bounds the wait for the kernel's answer on a netfilter
// socket. It answers within the sendmsg that delivers a request or batch,
// so only a broken socket would ever wait this long.
const nfReplyWait = 10 * time.Second

// nfConn is a netfilter netlink socket in a container's network namespace
// for create's two table operations: the look-up of mxc's table and the
// batch that programs it.
//
// Why not the nftables library's Conn for these: its Flush asks the kernel
// for an acknowledgement of every message and an echo of every rule, and
// reads each reply with two system calls through the poller: ~150 system
// calls for the egress table's 46 messages, on create's critical path.
// Here only the batch's last message asks for an acknowledgement (the
// kernel reports an error for every message that fails, asked or not, and
// delivers a batch's errors and its acknowledgement together once it has
// processed the whole batch), nothing asks for an echo, and replies are
// read many at a time. The messages themselves are still the library's
// (captureBatch).
type nfConn struct {
	conn *netlink.Conn
	rc   syscall.RawConn
	buf  []byte
}

// dialNF opens a netfilter socket in the namespace nsfd.
func dialNF(nsfd int) (*nfConn, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsfd})
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	// Errors without a copy of the message they answer: an element
	// message of a large set would not fit the reply buffer.
	if err := conn.SetOption(netlink.CapAcknowledge, true); err != nil {
		conn.Close()
		return nil, fmt.Errorf("nftables: %w", err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &nfConn{conn: conn, rc: rc, buf: make([]byte, 64<<10)}, nil
}

func (c *nfConn) close() { c.conn.Close() }

// captureBatch runs build on an nftables.Conn that sends nothing and
// returns the messages its Flush would have sent, batch begin and end
// included, with their sequence numbers.
func captureBatch(build func(c *nftables.Conn) error) ([]netlink.Message, error) {
	var msgs []netlink.Message
	// Every receive of the library's Flush gets an acknowledgement.
	ack := []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 4)}}
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		msgs = append(msgs, req...)
		return ack, nil
	}))
	if err != nil {
		return nil, err
	}
	if err := build(c); err != nil {
		return nil, err
	}
	if err := c.Flush(); err != nil {
		return nil, err
	}
	return msgs, nil
}

// sendBatch delivers a batch from captureBatch and returns the first error
// the kernel reported for it.
func (c *nfConn) sendBatch(msgs []netlink.Message) error {
	if len(msgs) < 3 {
		return nil // begin and end only: nothing to do
	}
	last := len(msgs) - 2 // the message before the batch end
	var b []byte
	for i := range msgs {
		m := msgs[i]
		m.Header.PID = 0
		m.Header.Flags &^= netlink.Echo
		if i == last {
			m.Header.Flags |= netlink.Acknowledge
		} else {
			m.Header.Flags &^= netlink.Acknowledge
		}
		mb, err := m.MarshalBinary()
		if err != nil {
			return err
		}
		b = append(b, mb...)
	}
	if len(b) > batchSndBuf/2 {
		// A large table (long CIDR lists) in one batch: the kernel
		// refuses a message larger than the socket's send buffer
		// (EMSGSIZE), whose default (net.core.wmem_default) is ~208 KiB.
		if err := c.setSendBuffer(len(b) * 2); err != nil {
			return err
		}
	}
	if err := c.send(b); err != nil {
		return err
	}
	var first error
	err := c.replies(func(seq uint32, code int32) bool {
		if code != 0 && first == nil {
			first = unix.Errno(-code)
		}
		// The last message's acknowledgement (or error) comes after the
		// errors of the others; one for the batch begin message means
		// the kernel refused the batch as a whole.
		return seq == msgs[last].Header.Sequence || (seq == msgs[0].Header.Sequence && code != 0)
	})
	if err != nil {
		return err
	}
	return first
}

// tableExists reports whether mxc's table is in the namespace.
func (c *nfConn) tableExists() (bool, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_TABLE_NAME, Data: append([]byte(TableName), 0)}})
	if err != nil {
		return false, err
	}
	const seq = 1
	// struct nfgenmsg (family, version, resource id), then the name.
	data := append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...)
	req := netlink.Message{
		Header: netlink.Header{
			Type:     netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETTABLE),
			Flags:    netlink.Request | netlink.Acknowledge,
			Sequence: seq,
			Length:   uint32(unix.NLMSG_HDRLEN + len(data)), // attributes are 4-aligned
		},
		Data: data,
	}
	b, err := req.MarshalBinary()
	if err != nil {
		return false, err
	}
	if err := c.send(b); err != nil {
		return false, err
	}
	var code int32
	if err := c.replies(func(s uint32, cd int32) bool {
		code = cd
		return s == seq
	}); err != nil {
		return false, err
	}
	switch code {
	case 0:
		// The table came first, then this acknowledgement.
		return true, nil
	case -int32(unix.ENOENT):
		return false, nil
	}
	return false, fmt.Errorf("list nftables table: %w", unix.Errno(-code))
}

// batchSndBuf is the send buffer a netfilter socket starts with here
// (net.core.wmem_default on most hosts).
const batchSndBuf = 208 << 10

// setSendBuffer raises the socket's send buffer to n bytes, above
// net.core.wmem_max if need be (SO_SNDBUFFORCE: the runtime is root).
func (c *nfConn) setSendBuffer(n int) error {
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n)
	}); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("nftables: send buffer of %d bytes for the batch: %w", n, serr)
	}
	return nil
}

func (c *nfConn) send(b []byte) error {
	var serr error
	if err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return !errors.Is(serr, unix.EAGAIN)
	}); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("nftables: send: %w", serr)
	}
	return nil
}

// replies reads replies, many per system call, and hands the error code of
// each acknowledgement or error (0 or -errno) to done until it says so.
func (c *nfConn) replies(done func(seq uint32, code int32) bool) error {
	if err := c.conn.SetReadDeadline(time.Now().Add(nfReplyWait)); err != nil {
		return err
	}
	for {
		var n int
		var rerr error
		if err := c.rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), c.buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		}); err != nil {
			return fmt.Errorf("nftables: reply: %w", err)
		}
		if rerr != nil {
			return fmt.Errorf("nftables: reply: %w", rerr)
		}
		msgs, err := syscall.ParseNetlinkMessage(c.buf[:n])
		if err != nil {
			return fmt.Errorf("nftables: reply: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if done(m.Header.Seq, int32(binary.NativeEndian.Uint32(m.Data[:4]))) {
				return nil
			}
		}
	}
}
