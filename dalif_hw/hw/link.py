"""The host link: frames in over a byte stream, the design driven, frames out
(:mod:`dalif_hw.core.protocol`, docs/boards.md).

Three parts share a frame buffer and the transmitter:

- the *parser* takes bytes, checks sync, length and CRC, and stores the payload in the
  buffer (a block RAM); a frame that stops arriving for ``timeout`` cycles is dropped;
- the *executor* acts on a whole, good frame only: INFO is answered from registers, CONFIG
  replays its values as writes on a configuration port, EVENTS replays its beats into the
  design's input stream. It answers bad frames with ERROR. While it runs, the parser takes
  no bytes (the host waits for each answer);
- the *sender* sends the executor's answers and the design's results: a network with a
  readout streams each sample's logits and class as one RESULT frame (its length is known
  in advance); a design with an event output collects beats in a second buffer and sends a
  SPIKES frame at each ``eot`` (or when the buffer is full).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..core.protocol import (
    EOT_BIT,
    HASH_BYTES,
    HEADER_BYTES,
    INFO_BYTES,
    SYNC,
    VERSION,
    Error,
    Frame,
)
from .uart import crc16_update

__all__ = ["HostLink", "config_ports"]


def config_ports(inner: wiring.Component) -> list[str]:
    """Names of ``inner``'s configuration ports in signature order: the CONFIG frame's
    ``layer`` numbers them."""
    return [name for name in inner.signature.members if name == "cfg" or name.startswith("cfg_")]


class HostLink(wiring.Component):
    """Drives ``inner`` (a NeuronArray or NetworkTop) from frames on ``rx`` and answers on
    ``tx`` (see the module docstring).

    Parameters
    ----------
    inner : wiring.Component
        The design; made a submodule here.
    design_hash : bytes
        :func:`dalif_hw.core.protocol.design_hash` of its manifest, sent in INFO_REPLY.
    buffer_bytes : int
        The largest payload accepted (a power of two).
    timeout : int
        Cycles without a byte after which a frame being received is dropped.
    """

    def __init__(self, inner: wiring.Component, design_hash: bytes, *,
                 buffer_bytes: int = 1024, timeout: int = 1 << 16):
        if len(design_hash) != HASH_BYTES:
            raise ValueError(f"design_hash must be {HASH_BYTES} bytes, not {len(design_hash)}")
        if buffer_bytes < 64 or buffer_bytes & (buffer_bytes - 1) or buffer_bytes > 1 << 15:
            raise ValueError(f"buffer_bytes must be a power of two in 64..32768, not "
                             f"{buffer_bytes}")
        self.inner = inner
        self.design_hash = bytes(design_hash)
        self.buffer_bytes = buffer_bytes
        self.timeout = timeout
        self.ports = [getattr(inner, name) for name in config_ports(inner)]
        for name, port in zip(config_ports(inner), self.ports):
            if len(port.addr) > 16 or len(port.lane) > 8:
                raise ValueError(f"configuration port {name} has {len(port.addr)} address and "
                                 f"{len(port.lane)} lane bits; a CONFIG frame carries 16 and 8")
        if len(self.ports) > 255:
            raise ValueError(f"a CONFIG frame names one of 255 ports, not {len(self.ports)}")
        self.value_bytes = -(-max(len(p.data) for p in self.ports) // 8) if self.ports else 1
        self.readout = hasattr(inner, "logits")
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "busy": Out(1)})

    # -- the parts -------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = self.inner
        buffer = m.submodules.buffer = Memory(shape=8, depth=self.buffer_bytes, init=[])
        buf_wr, buf_rd = buffer.write_port(), buffer.read_port()

        # Executor -> sender: an answer to send (type, length, payload bytes in registers).
        # ``sent`` (from the sender) for one cycle when the answer has gone.
        answer = {"req": Signal(), "kind": Signal(8), "length": Signal(16), "sent": Signal(),
                  "bytes": Array(Signal(8, name=f"answer{k}") for k in range(INFO_BYTES))}
        frame = {"kind": Signal(8), "length": Signal(16), "go": Signal()}
        refusal = self._parser(m, buf_wr, frame)
        self._executor(m, buf_rd, frame, refusal, answer)
        self._sender(m, answer)
        return m

    def _parser(self, m, buf_wr, frame):
        """Bytes to a stored frame; ``frame['go']`` for one cycle when a good one is in.
        Returns the error code of a frame refused (for one cycle, 0 otherwise)."""
        crc = Signal(16)
        count = Signal(16)
        timer = Signal(range(self.timeout + 1))
        crc_hi = Signal(8)
        byte = self.rx.payload
        take = self.rx.valid & self.rx.ready
        m.d.comb += [buf_wr.addr.eq(count), buf_wr.data.eq(byte)]
        m.d.sync += frame["go"].eq(0)
        error = Signal(8)     # a frame to refuse: its error code, 0 for none
        expired = timer == self.timeout
        m.d.comb += self.rx.ready.eq(~self.busy)
        with m.FSM(name="parser") as fsm:
            with m.State("IDLE"):
                with m.If(take & (byte == SYNC)):
                    m.d.sync += crc.eq(0xFFFF)
                    m.next = "TYPE"
            with m.State("TYPE"):
                with m.If(expired):
                    m.next = "IDLE"
                with m.If(take):
                    m.d.sync += [frame["kind"].eq(byte), crc.eq(crc16_update(crc, byte))]
                    m.next = "LEN0"
            with m.State("LEN0"):
                with m.If(expired):
                    m.next = "IDLE"
                with m.If(take):
                    m.d.sync += [frame["length"][:8].eq(byte), crc.eq(crc16_update(crc, byte))]
                    m.next = "LEN1"
            with m.State("LEN1"):
                with m.If(expired):
                    m.next = "IDLE"
                with m.If(take):
                    m.d.sync += [frame["length"][8:].eq(byte), crc.eq(crc16_update(crc, byte)),
                                 count.eq(0)]
                    with m.If(Cat(frame["length"][:8], byte) == 0):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                with m.If(expired):
                    m.next = "IDLE"
                m.d.comb += buf_wr.en.eq(take & (count < self.buffer_bytes))
                with m.If(take):
                    m.d.sync += [count.eq(count + 1), crc.eq(crc16_update(crc, byte))]
                    with m.If(count + 1 == frame["length"]):
                        m.next = "CRC0"
            with m.State("CRC0"):
                with m.If(expired):
                    m.next = "IDLE"
                with m.If(take):
                    m.d.sync += crc_hi.eq(byte)
                    m.next = "CRC1"
            with m.State("CRC1"):
                with m.If(expired):
                    m.next = "IDLE"
                with m.If(take):
                    with m.If(Cat(byte, crc_hi) != crc):
                        m.d.comb += error.eq(Error.CRC)
                    with m.Elif(frame["length"] > self.buffer_bytes):
                        m.d.comb += error.eq(Error.LENGTH)
                    with m.Else():
                        m.d.sync += frame["go"].eq(1)
                    m.next = "IDLE"
        with m.If(take | fsm.ongoing("IDLE")):
            m.d.sync += timer.eq(0)
        with m.Else():
            m.d.sync += timer.eq(timer + 1)
        with m.If(expired):
            m.d.comb += error.eq(Error.TIMEOUT)
        return error

    def _executor(self, m, buf_rd, frame, refusal, answer):
        """A good frame applied; answers queued for the sender."""
        inner, B = self.inner, self.value_bytes
        ptr = Signal(16)        # next byte of the payload to read
        have = Signal()         # buf_rd.data is byte ptr - 1
        m.d.comb += buf_rd.addr.eq(ptr)
        m.d.sync += have.eq(0)
        byte = buf_rd.data
        length = frame["length"]

        def queue(kind, payload):
            m.d.sync += [answer["req"].eq(1), answer["kind"].eq(kind),
                         answer["length"].eq(len(payload))]
            m.d.sync += [answer["bytes"][k].eq(v) for k, v in enumerate(payload)]

        def refuse(code, kind):
            queue(Frame.ERROR, [code, kind])

        # CONFIG header and value.
        layer, sel, addr, lane, wrap = (Signal(8), Signal(8), Signal(16), Signal(8), Signal(8))
        value = Signal(8 * B)
        vbyte = Signal(range(B))
        writes = Signal(16)
        strobe = Signal()
        for k, port in enumerate(self.ports):
            m.d.comb += [port.en.eq(strobe & (layer == k)), port.sel.eq(sel), port.addr.eq(addr),
                         port.lane.eq(lane), port.data.eq(value)]
        # EVENTS beat.
        beat = Signal(16)
        beat_v = Signal()
        m.d.comb += [inner.i.payload.index.eq(beat[:EOT_BIT]),
                     inner.i.payload.eot.eq(beat[EOT_BIT])]
        with m.FSM(name="executor") as fsm:
            with m.State("IDLE"):
                with m.If(refusal != 0):
                    refuse(refusal, frame["kind"])
                with m.Elif(frame["go"]):
                    m.d.sync += [ptr.eq(0), writes.eq(0), vbyte.eq(0)]
                    with m.Switch(frame["kind"]):
                        with m.Case(Frame.INFO):
                            with m.If(length != 0):
                                refuse(Error.LENGTH, Frame.INFO)
                            with m.Else():
                                status = Cat(inner.err, Const(0, 7))
                                queue(Frame.INFO_REPLY, [
                                    *self.design_hash, VERSION, status,
                                    *self.buffer_bytes.to_bytes(2, "little"), B,
                                    len(self.ports)])
                        with m.Case(Frame.CONFIG):
                            with m.If((length < HEADER_BYTES) |
                                      ((length - HEADER_BYTES) % B != 0)):
                                refuse(Error.LENGTH, Frame.CONFIG)
                            with m.Else():
                                m.next = "CONFIG_HEADER"
                        with m.Case(Frame.EVENTS):
                            with m.If(length[0]):
                                refuse(Error.LENGTH, Frame.EVENTS)
                            with m.Else():
                                m.next = "EVENTS"
                        with m.Default():
                            refuse(Error.TYPE, frame["kind"])
            # Bytes come one cycle after their address: ptr runs ahead, ``have`` marks data.
            with m.State("CONFIG_HEADER"):
                with m.If(~have & (ptr < HEADER_BYTES)):
                    m.d.sync += [ptr.eq(ptr + 1), have.eq(1)]
                with m.If(have):
                    with m.Switch(ptr - 1):
                        for k, field in enumerate([layer, sel, addr[:8], addr[8:], lane, wrap]):
                            with m.Case(k):
                                m.d.sync += field.eq(byte)
                    with m.If(ptr == HEADER_BYTES):
                        m.next = "CONFIG_CHECK"
            with m.State("CONFIG_CHECK"):
                with m.If((layer >= len(self.ports)) | (wrap == 0)):
                    refuse(Error.LAYER, Frame.CONFIG)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "CONFIG_VALUES"
            with m.State("CONFIG_VALUES"):
                with m.If(~have & ~strobe & (ptr < length)):
                    m.d.sync += [ptr.eq(ptr + 1), have.eq(1)]
                with m.If(have):
                    m.d.sync += value.word_select(vbyte, 8).eq(byte)
                    m.d.sync += vbyte.eq(Mux(vbyte == B - 1, 0, vbyte + 1))
                    with m.If(vbyte == B - 1):
                        m.d.sync += strobe.eq(1)
                with m.If(strobe):
                    m.d.sync += [strobe.eq(0), writes.eq(writes + 1)]
                    with m.If(lane + 1 == wrap):
                        m.d.sync += [lane.eq(0), addr.eq(addr + 1)]
                    with m.Else():
                        m.d.sync += lane.eq(lane + 1)
                with m.If(~have & ~strobe & (ptr == length)):
                    queue(Frame.ACK, [writes[:8], writes[8:]])
                    m.next = "IDLE"
            with m.State("EVENTS"):
                m.d.comb += inner.i.valid.eq(beat_v)
                with m.If(inner.i.valid & inner.i.ready):
                    m.d.sync += beat_v.eq(0)
                # The low byte, then the high one, which makes the beat valid.
                with m.If(~beat_v & ~have & (ptr < length)):
                    m.d.sync += [ptr.eq(ptr + 1), have.eq(1)]
                with m.If(have & ~ptr[0]):
                    m.d.sync += [beat[8:].eq(byte), beat_v.eq(1)]
                with m.Elif(have):
                    m.d.sync += beat[:8].eq(byte)
                with m.If(~beat_v & ~have & (ptr == length)):
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE") | answer["req"])
        with m.If(answer["sent"]):
            m.d.sync += answer["req"].eq(0)

    def _sender(self, m, answer):
        """Frames out: the executor's answers first, else the design's results."""
        crc = Signal(16)
        count = Signal(16)
        kind = Signal(8)
        length = Signal(16)
        source = Signal(2)        # 0: answer registers, 1: results
        out = Signal(8)
        out_v = Signal()
        m.d.comb += [self.tx.payload.eq(out), self.tx.valid.eq(out_v)]
        sent = self.tx.valid & self.tx.ready
        gap = Signal()            # a byte went last cycle: memories see the new count now
        m.d.sync += gap.eq(sent)
        result_req, result_len, result_byte, result_v, result_next, result_done = \
            self._results(m, count)
        with m.FSM(name="sender"):
            with m.State("IDLE"):
                with m.If(answer["req"]):
                    m.d.sync += [kind.eq(answer["kind"]), length.eq(answer["length"]),
                                 source.eq(0)]
                    m.next = "SYNC"
                with m.Elif(result_req):
                    m.d.sync += [kind.eq(Frame.RESULT if self.readout else Frame.SPIKES),
                                 length.eq(result_len), source.eq(1)]
                    m.next = "SYNC"
            for state, value, after in (("SYNC", Const(SYNC, 8), "TYPE"), ("TYPE", kind, "LEN0"),
                                        ("LEN0", length[:8], "LEN1"),
                                        ("LEN1", length[8:], "PAYLOAD")):
                with m.State(state):
                    with m.If(~out_v):
                        m.d.sync += [out.eq(value), out_v.eq(1)]
                    with m.If(sent):
                        m.d.sync += out_v.eq(0)
                        if state == "SYNC":
                            m.d.sync += crc.eq(0xFFFF)
                        else:
                            m.d.sync += crc.eq(crc16_update(crc, out))
                        if state == "LEN1":
                            m.d.sync += count.eq(0)
                        m.next = after
            with m.State("PAYLOAD"):
                with m.If(count == length):
                    m.next = "CRC0"
                with m.Elif(~out_v & (source == 0)):
                    m.d.sync += [out.eq(answer["bytes"][count]), out_v.eq(1)]
                with m.Elif(~out_v & ~gap & result_v):
                    m.d.sync += [out.eq(result_byte), out_v.eq(1)]
                    m.d.comb += result_next.eq(1)
                with m.If(sent):
                    m.d.sync += [out_v.eq(0), count.eq(count + 1),
                                 crc.eq(crc16_update(crc, out))]
            for state, value, after in (("CRC0", crc[8:], "CRC1"), ("CRC1", crc[:8], "IDLE")):
                with m.State(state):
                    with m.If(~out_v):
                        m.d.sync += [out.eq(value), out_v.eq(1)]
                    with m.If(sent):
                        m.d.sync += out_v.eq(0)
                        m.next = after
                        if after == "IDLE":
                            m.d.comb += [answer["sent"].eq(source == 0),
                                         result_done.eq(source == 1)]

    def _results(self, m, count):
        """The design's outputs as payload bytes: ``(req, length, byte, byte valid, next,
        done)``; ``next`` takes the byte, ``done`` says the frame has gone."""
        inner = self.inner
        req, nxt, done = Signal(), Signal(), Signal()
        byte, valid = Signal(8), Signal()
        if self.readout:
            logits, cls = inner.logits, getattr(inner, "class")
            L = -(-len(logits.payload.value) // 8)
            length = Const(inner.network.outputs * L + 2, 16)
            part = Signal(range(max(L, 2)))
            in_class = Signal()
            value = logits.payload.value.as_signed()
            wide = Signal(8 * L)
            m.d.comb += wide.eq(value)     # sign-extended to whole bytes
            m.d.comb += req.eq(logits.valid)
            with m.If(~in_class):
                m.d.comb += [byte.eq(wide.word_select(part, 8)), valid.eq(logits.valid)]
                with m.If(nxt):
                    m.d.sync += part.eq(Mux(part == L - 1, 0, part + 1))
                    with m.If(part == L - 1):
                        m.d.comb += logits.ready.eq(1)
                        with m.If(logits.payload.last):
                            m.d.sync += in_class.eq(1)
            with m.Else():
                index = Signal(16)
                m.d.comb += [index.eq(cls.payload.index), byte.eq(index.word_select(part[0], 8)),
                             valid.eq(cls.valid)]
                with m.If(nxt):
                    m.d.sync += part.eq(~part[0])
                    with m.If(part[0]):
                        m.d.comb += cls.ready.eq(1)
                        m.d.sync += [in_class.eq(0), part.eq(0)]
            return req, length, byte, valid, nxt, done
        # Event output: beats into a buffer, a SPIKES frame at each eot or when it is full.
        o = inner.o
        outputs = inner.network.outputs if hasattr(inner, "network") else inner.config.neurons
        depth = min(max(64, 1 << ceil_log2(outputs + 1)), self.buffer_bytes // 2)
        beats = m.submodules.spikes_out = Memory(shape=unsigned(16), depth=depth, init=[])
        wr, rd = beats.write_port(), beats.read_port()
        held = Signal(range(depth + 1))
        full = Signal()
        m.d.comb += [o.ready.eq(~full), wr.addr.eq(held),
                     wr.data.eq(Cat(o.payload.index, Const(0, EOT_BIT - len(o.payload.index)),
                                    o.payload.eot)),
                     wr.en.eq(o.valid & o.ready)]
        with m.If(o.valid & o.ready):
            m.d.sync += held.eq(held + 1)
            with m.If(o.payload.eot | (held == depth - 1)):
                m.d.sync += full.eq(1)
        m.d.comb += req.eq(full)
        # Byte k of the payload is half k % 2 of word k // 2; the read port's address follows
        # the count, and the sender waits a cycle after the count moves.
        m.d.comb += [rd.addr.eq(count[1:]), byte.eq(rd.data.word_select(count[0], 8)),
                     valid.eq(1)]
        with m.If(done):
            m.d.sync += [held.eq(0), full.eq(0)]
        return req, held * 2, byte, valid, nxt, done
