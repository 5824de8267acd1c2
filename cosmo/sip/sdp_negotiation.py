"""SDP offer/answer for the audio path (RFC 3264).

Theory of operation.  Cosmo carries one audio stream per call leg, plain RTP
(``RTP/AVP``) with G.711 and RFC 4733 telephone events.

* As offerer, :func:`create_offer` describes that stream; :func:`process_answer`
  checks the peer's answer against the offer (same number of ``m=`` lines,
  codecs a subset of the offered ones, a direction RFC 3264 §6.1 allows) and
  returns the :class:`NegotiatedMedia` to run RTP with.
* As answerer, :func:`negotiate_answer` picks the first audio stream with a
  supported transport and a common codec, takes the first codec in the
  *offerer's* order that we support (RFC 3264 §6.1: the answerer SHOULD keep
  the offerer's preference), keeps the offerer's payload-type numbers so both
  directions use the same ones, adds ``telephone-event`` when offered at the
  codec's clock rate, and rejects every other ``m=`` line with port 0 and the
  offered format list (RFC 3264 §6), so the answer has as many ``m=`` lines as
  the offer.

The ``o=`` line stays the same for the whole call; each new description the
same side sends carries the next version (RFC 3264 §8, :func:`next_version`).

A description nothing can be accepted from raises :class:`SdpError` with
status 488 ``Not Acceptable Here``; a stream without a connection address
raises status 400.  Our own misuse (bad port, no codecs) is a
:class:`SipUsageError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .errors import SipUsageError
from .sdp import (
    Codec,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
    Timing,
)

DEFAULT_CODECS: tuple[Codec, ...] = (
    Codec("PCMU", 8000, 0),
    Codec("PCMA", 8000, 8),
    Codec("telephone-event", 8000, 101, fmtp="0-16"),
)
# RTP/SAVP, UDP/TLS/RTP/SAVPF (WebRTC) and the rest are answered with port 0
# until the media path speaks SRTP.
SUPPORTED_PROTOS = frozenset({"RTP/AVP"})
DEFAULT_PTIME = 20  # ms; RFC 3551 §4.5 default packetization for G.711

_NOT_ACCEPTABLE = (488, "Not Acceptable Here")


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """What the RTP session needs once offer and answer agree.

    ``codec`` and ``telephone_event_payload_type`` carry the payload-type
    numbers the peer asked to receive; ``direction`` is from our side (``sends``
    means we may send RTP); ``ptime`` is the packet length the peer asked for.
    """

    remote_address: str
    remote_rtp_port: int
    remote_rtcp_port: int
    codec: Codec
    telephone_event_payload_type: int | None
    direction: Direction
    ptime: int


def next_version(description: SessionDescription) -> SessionDescription:
    """``description`` with the ``o=`` version one higher, for a re-offer (RFC 3264 §8)."""
    origin = description.origin
    return replace(description, origin=replace(origin, sess_version=origin.sess_version + 1))


def create_offer(
    local_ip: str,
    rtp_port: int,
    codecs: Sequence[Codec] = DEFAULT_CODECS,
    *,
    session_id: str | int,
    version: int,
    direction: Direction | str = Direction.SENDRECV,
    ptime: int = DEFAULT_PTIME,
) -> SessionDescription:
    """An offer of one ``RTP/AVP`` audio stream at ``local_ip:rtp_port``.

    ``codecs`` are listed in preference order with their own payload types.
    Raises :class:`SipUsageError` for an impossible port, ptime, direction or
    codec list.
    """
    _check_local(local_ip, rtp_port, ptime)
    if not any(not c.is_telephone_event for c in codecs):
        raise SipUsageError("an offer needs at least one audio codec")
    numbers = [c.payload_type for c in codecs]
    if len(set(numbers)) != len(numbers) or not all(0 <= n <= 127 for n in numbers):
        raise SipUsageError(f"payload types must be distinct and 0-127, got {numbers}")
    media = _audio_media(rtp_port, list(codecs), _direction(direction), ptime)
    return _description(local_ip, session_id, version, (Timing(),), (media,))


def negotiate_answer(
    offer: SessionDescription,
    local_ip: str,
    rtp_port: int,
    supported_codecs: Sequence[Codec] = DEFAULT_CODECS,
    *,
    session_id: str | int,
    version: int,
    local_direction: Direction | str = Direction.SENDRECV,
    ptime: int = DEFAULT_PTIME,
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer ``offer`` with one audio stream at ``local_ip:rtp_port``.

    ``supported_codecs`` are matched by name, clock rate and channels;
    include a ``telephone-event`` entry to accept RFC 4733 events.  The answer
    direction is what both ``local_direction`` and the offer allow (RFC 3264
    §6.1: sendonly is answered recvonly, recvonly sendonly, inactive inactive).

    Raises :class:`SdpError` 488 when no audio stream can be accepted, 400
    when the chosen stream has no connection address.
    """
    _check_local(local_ip, rtp_port, ptime)
    ours = _direction(local_direction)
    index, offered, codec = _choose_stream(offer, supported_codecs)
    connection = _require_connection(offer, offered, "offer")
    events: Codec | None = None
    event_pt = offered.telephone_event(codec.clock_rate)
    local_events = next(
        (c for c in supported_codecs if c.is_telephone_event and c.clock_rate == codec.clock_rate),
        None,
    )
    if event_pt is not None and local_events is not None:
        offered_events = offered.rtpmap(event_pt)
        fmtp = local_events.fmtp
        if fmtp is None and offered_events is not None:
            fmtp = offered_events.fmtp
        events = Codec(local_events.name, codec.clock_rate, event_pt, 1, fmtp)
    direction = ours.restrict(offer.direction(offered).reversed())
    media = []
    for position, m in enumerate(offer.media):
        if position == index:
            chosen = [codec] if events is None else [codec, events]
            media.append(_audio_media(rtp_port, chosen, direction, ptime))
        else:
            media.append(MediaDescription(m.media, 0, m.proto, m.formats))
    answer = _description(local_ip, session_id, version, offer.times, tuple(media))
    result = NegotiatedMedia(
        remote_address=connection.address,
        remote_rtp_port=offered.port,
        remote_rtcp_port=offered.rtcp_port,
        codec=codec,
        telephone_event_payload_type=events.payload_type if events is not None else None,
        direction=direction,
        ptime=offered.ptime or ptime,
    )
    return answer, result


def process_answer(offer: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """Check the peer's ``answer`` to our ``offer`` and say how to run RTP.

    The answer's codecs must be a subset of the offered ones, compared by
    format rather than payload-type number (RFC 4317 §2.3 answers iLBC offered
    as 97 with 99); the first one it lists is the codec to send.

    Raises :class:`SdpError` 400 when the answer breaks RFC 3264 §6 structure
    (``m=`` line count or media types differ, no connection address) and 488
    when it rejects the audio stream, changes its transport or names a codec
    that was not offered.  Raises :class:`SipUsageError` if ``offer`` has no
    audio stream we could have sent.
    """
    if len(answer.media) != len(offer.media):
        raise SdpError(
            f"answer has {len(answer.media)} m= lines, the offer had {len(offer.media)} (RFC 3264 §6)"
        )
    for position, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
        if ours.media != theirs.media:
            raise SdpError(f"answer m= line {position + 1} is {theirs.media}, the offer's is {ours.media}")
    index = next((i for i, m in enumerate(offer.media) if _usable_audio(m)), None)
    if index is None:
        raise SipUsageError("the offer has no RTP/AVP audio stream")
    offered, answered = offer.media[index], answer.media[index]
    if answered.port == 0:
        raise SdpError("the answer rejects the audio stream (port 0)", *_NOT_ACCEPTABLE)
    if answered.proto != offered.proto:
        raise SdpError(
            f"the answer changes the audio transport from {offered.proto} to {answered.proto}",
            *_NOT_ACCEPTABLE,
        )
    connection = _require_connection(answer, answered, "answer")
    codec: Codec | None = None
    for pt in answered.payload_types:
        answered_codec = answered.rtpmap(pt)
        if answered_codec is None:
            raise SdpError(
                f"answer format {pt} has no rtpmap and is not a static payload type", *_NOT_ACCEPTABLE
            )
        match = next((c for c in offered.codecs if c.matches(answered_codec)), None)
        if match is None:
            raise SdpError(
                f"answer format {pt} ({answered_codec.rtpmap_value}) was not offered", *_NOT_ACCEPTABLE
            )
        if codec is None and not (match.is_telephone_event or match.is_comfort_noise):
            fmtp = answered_codec.fmtp if answered_codec.fmtp is not None else match.fmtp
            codec = Codec(match.name, match.clock_rate, pt, match.channels, fmtp)
    if codec is None:
        raise SdpError("the answer names no audio codec, only events or comfort noise", *_NOT_ACCEPTABLE)
    # RFC 3264 §6.1 lets a sendonly offer be answered only recvonly or
    # inactive.  An answer of sendrecv (or of no direction, which means
    # sendrecv) breaks that; narrowing it to what the offer allows keeps the
    # call up and never sends where the offer said not to.
    direction = offer.direction(offered).restrict(answer.direction(answered).reversed())
    return NegotiatedMedia(
        remote_address=connection.address,
        remote_rtp_port=answered.port,
        remote_rtcp_port=answered.rtcp_port,
        codec=codec,
        telephone_event_payload_type=answered.telephone_event(codec.clock_rate),
        direction=direction,
        ptime=answered.ptime or offered.ptime or DEFAULT_PTIME,
    )


# -- helpers ------------------------------------------------------------------------


def _check_local(local_ip: str, rtp_port: int, ptime: int) -> None:
    if not local_ip or any(ch.isspace() for ch in local_ip):
        raise SipUsageError(f"local address {local_ip!r} cannot go in a c= line")
    if not 1 <= rtp_port <= 65535:
        raise SipUsageError(f"RTP port {rtp_port} is not 1-65535")
    if ptime <= 0:
        raise SipUsageError(f"ptime {ptime} must be positive")


def _direction(value: Direction | str) -> Direction:
    try:
        return Direction(value)
    except ValueError:
        raise SipUsageError(f"{value!r} is not a media direction") from None


def _usable_audio(media: MediaDescription) -> bool:
    return media.media == "audio" and media.port != 0 and media.proto.upper() in SUPPORTED_PROTOS


def _choose_stream(
    offer: SessionDescription, supported: Sequence[Codec]
) -> tuple[int, MediaDescription, Codec]:
    """The first offered audio stream we can take and its codec, else 488."""
    voice = [c for c in supported if not (c.is_telephone_event or c.is_comfort_noise)]
    offered_codecs: list[str] = []
    other_protos: list[str] = []
    for index, media in enumerate(offer.media):
        if media.media != "audio" or media.port == 0:
            continue
        if not _usable_audio(media):
            other_protos.append(media.proto)
            continue
        for candidate in media.codecs:
            offered_codecs.append(candidate.rtpmap_value)
            if candidate.is_telephone_event or candidate.is_comfort_noise:
                continue
            local = next((c for c in voice if c.matches(candidate)), None)
            if local is not None:
                fmtp = local.fmtp if local.fmtp is not None else candidate.fmtp
                pt = candidate.payload_type
                return index, media, Codec(local.name, local.clock_rate, pt, local.channels, fmtp)
    if offered_codecs:
        ours = ", ".join(c.rtpmap_value for c in voice)
        message = f"no common audio codec: offered {', '.join(offered_codecs)}; supported {ours}"
    elif other_protos:
        message = (
            f"no audio stream over a supported transport: offered {', '.join(other_protos)};"
            f" supported {', '.join(sorted(SUPPORTED_PROTOS))}"
        )
    else:
        message = "the offer has no audio stream"
    raise SdpError(message, *_NOT_ACCEPTABLE)


def _require_connection(description: SessionDescription, media: MediaDescription, role: str) -> Connection:
    connection = description.connection_for(media)
    if connection is None:
        raise SdpError(f"the {role}'s audio stream has no c= line at media or session level")
    return connection


def _audio_media(rtp_port: int, codecs: list[Codec], direction: Direction, ptime: int) -> MediaDescription:
    attributes: list[tuple[str, str | None]] = []
    for codec in codecs:
        attributes.append(("rtpmap", f"{codec.payload_type} {codec.rtpmap_value}"))
        if codec.fmtp is not None:
            attributes.append(("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    attributes += [("ptime", str(ptime)), (direction.value, None)]
    formats = tuple(str(c.payload_type) for c in codecs)
    return MediaDescription("audio", rtp_port, "RTP/AVP", formats, attributes=tuple(attributes))


def _description(
    local_ip: str,
    session_id: str | int,
    version: int,
    times: tuple[Timing, ...],
    media: tuple[MediaDescription, ...],
) -> SessionDescription:
    addrtype = "IP6" if ":" in local_ip else "IP4"
    return SessionDescription(
        origin=Origin("-", str(session_id), version, "IN", addrtype, local_ip),
        session_name="-",
        connection=Connection("IN", addrtype, local_ip),
        times=times,
        media=media,
    )
