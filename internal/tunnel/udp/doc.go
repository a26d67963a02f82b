// Package udp is the dataplane's UDP socket (RFC 3948 encapsulation runs on
// it): batched receive and send with recvmmsg/sendmmsg, and the kernel's UDP
// segmentation offloads when it has them: UDP_SEGMENT (GSO, Linux 4.18) sends
// a run of equal-sized datagrams to one destination in one buffer, UDP_GRO
// (Linux 5.0) receives a run of them as one buffer.
//
// The mmsghdr arrays, iovecs, addresses and control buffers are allocated
// once per Conn, so ReadBatch and WriteBatch do not allocate. The syscalls run
// through the socket's syscall.RawConn, so a blocked ReadBatch parks its
// goroutine in the runtime's netpoller, and Close wakes it.
//
// Not done: IP_PKTINFO (a Conn is bound to one address, which is the local
// address of everything it receives), and sockets bound to a wildcard
// address.
package udp
