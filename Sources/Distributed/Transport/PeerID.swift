/// The routing id of a peer of a ROUTER socket: the bytes libzmq prefixes to that peer's messages.
///
/// A DEALER may choose its own (`SocketThread.Role.dealer(connect:routingID:)`); otherwise the
/// ROUTER assigns 5 bytes starting with a zero byte.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    package let bytes: [UInt8]

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// A routing id made of a name's UTF-8 bytes (libzmq requires 1...255 bytes, not starting with 0).
    package init(_ name: String) { bytes = Array(name.utf8) }

    /// Printable names as they are, other ids in hex.
    public var description: String {
        if !bytes.isEmpty, bytes.allSatisfy({ $0 >= 0x21 && $0 < 0x7f }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return "0x"
            + bytes.map { byte in
                let hex = String(byte, radix: 16)
                return byte < 16 ? "0" + hex : hex
            }.joined()
    }
}

/// A multipart message that arrived on a socket thread.
package struct ReceivedMessage: Sendable {
    /// The sending peer (ROUTER sockets); nil on a DEALER, whose only peer is the ROUTER.
    package let peer: PeerID?
    /// The message's frames, without the routing-id frame.
    package let frames: [Frame]

    package init(peer: PeerID?, frames: [Frame]) {
        self.peer = peer
        self.frames = frames
    }
}

/// What a socket thread reports to async code.
package enum SocketEvent: Sendable {
    case message(ReceivedMessage)
    /// A message could not be delivered (the peer is gone, or the message was malformed); it was dropped.
    case undeliverable(peer: PeerID?, error: TransportError)
    /// The socket broke (a receive or poll failed); the thread has stopped and `events` ends.
    case failed(TransportError)
}
