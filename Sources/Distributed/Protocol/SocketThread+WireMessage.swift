extension SocketThread {
    /// Encodes and queues `message` (see `send(_:to:)` for frames). To send one tensor bucket to
    /// many peers, encode once with `message.frames()` and send those frames to each.
    @discardableResult
    package func send(_ message: WireMessage, to peer: PeerID? = nil) -> Bool {
        send(message.frames(), to: peer)
    }
}

extension ReceivedMessage {
    /// The protocol message these frames hold.
    package func decoded() throws(ProtocolError) -> WireMessage {
        try WireMessage(frames: frames)
    }
}
