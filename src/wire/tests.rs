//! Properties of the wire format: lossless round-trips, and a decoder that never panics, never
//! buffers past its limit, and either yields the frames sent or stops.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use super::*;
use crate::event::Value;

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("NaN never equals itself", |f| !f.is_nan())
            .prop_map(Value::from),
        any::<f32>()
            .prop_filter("NaN never equals itself", |f| !f.is_nan())
            .prop_map(Value::F32),
        ".{0,20}".prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Binary),
        (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(t, d)| Value::Ext(t, d)),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..8).prop_map(Value::Map),
        ]
    })
}

fn encoded(tag: &str, data: &Value, framing: Framing) -> Vec<u8> {
    let mut body = Vec::new();
    encode_body(tag, data, &mut body);
    let mut out = Vec::new();
    encode_frame(&body, framing, &mut out);
    out
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![Just(Framing::Bare), Just(Framing::LengthPrefixed)]
}

proptest! {
    #[test]
    fn any_data_round_trips_through_frames_split_anywhere(
        events in proptest::collection::vec(("[a-z/]{1,12}", value()), 1..5),
        framing in framing(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let stream: Vec<u8> = events.iter().flat_map(|(tag, data)| encoded(tag, data, framing)).collect();
        let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
        points.push(stream.len());
        points.sort_unstable();
        let mut codec = FrameCodec::new(1 << 20);
        let mut buffer = BytesMut::new();
        let mut decoded = Vec::new();
        let mut start = 0;
        for point in points {
            buffer.extend_from_slice(&stream[start..point]);
            start = point;
            while let Some(frame) = codec.decode(&mut buffer).unwrap() {
                decoded.push(decode_body(&frame.unwrap().body()).unwrap());
            }
        }
        prop_assert_eq!(codec.framing(), Some(framing));
        prop_assert_eq!(decoded.len(), events.len());
        for (event, (tag, data)) in decoded.iter().zip(&events) {
            prop_assert_eq!(&event.tag, tag);
            prop_assert_eq!(&event.data, data);
        }
    }

    #[test]
    fn garbage_never_panics_or_buffers_past_the_limit(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..64,
    ) {
        let limit = 256;
        let mut codec = FrameCodec::new(limit);
        let mut buffer = BytesMut::new();
        'feed: for piece in bytes.chunks(chunk) {
            buffer.extend_from_slice(piece);
            loop {
                match codec.decode(&mut buffer) {
                    Ok(Some(Ok(frame))) => {
                        let body = frame.body();
                        let _ = decode_body(&body);
                        let _ = validate_body(&body);
                    }
                    Ok(Some(Err(_))) => {}
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            // What stays buffered is at most one unfinished frame within the limit (plus the
            // bytes of the read that showed it was too big).
            prop_assert!(buffer.len() <= limit + 4 + chunk);
        }
    }
}

proptest! {
    /// Relaying a read's frames as chunks gives the same frames, in order, as decoding them one
    /// by one, however the stream is cut, with frames that are not canonical in between.
    #[test]
    fn chunks_hold_the_canonical_frames_of_a_stream_cut_anywhere(
        events in proptest::collection::vec(("[a-z/]{1,12}", value(), 0..3u8), 1..8),
        framing in framing(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let stream: Vec<u8> = events
            .iter()
            .flat_map(|(tag, data, kind)| match (kind, framing) {
                // A frame without `head`, its body a str: an event, not canonical.
                (1, Framing::Bare) => {
                    let mut body = Vec::new();
                    encode_body(tag, data, &mut body);
                    let mut frame = vec![0x81, 0xa4];
                    frame.extend_from_slice(b"body");
                    frame.push(0xdb);
                    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
                    frame.extend_from_slice(&body);
                    frame
                }
                // Not an event at all (a map without a body): ignored.
                (2, Framing::Bare) => vec![0x81, 0xa1, b'x', 0x01],
                _ => encoded(tag, data, framing),
            })
            .collect();
        let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
        points.push(stream.len());
        points.sort_unstable();
        let mut codec = FrameCodec::new(1 << 20);
        let mut buffer = BytesMut::new();
        let mut chunks = Vec::new();
        let mut start = 0;
        for point in points {
            buffer.extend_from_slice(&stream[start..point]);
            start = point;
            codec.decode_chunks(&mut buffer, |body| body.is_ok(), &mut chunks).unwrap();
        }
        prop_assert!(buffer.is_empty());
        let relayed: Vec<bytes::Bytes> = chunks.iter().flat_map(Chunk::frames).collect();
        let counted: u32 = chunks.iter().map(|chunk| chunk.events).sum();
        let tags: Vec<Option<&str>> = chunks
            .iter()
            .flat_map(|chunk| chunk.tagged_frames().map(|(tag, _)| tag))
            .collect();
        let expected: Vec<bytes::Bytes> = events
            .iter()
            .filter(|(.., kind)| *kind != 2 || framing == Framing::LengthPrefixed)
            .map(|(tag, data, _)| encoded(tag, data, Framing::Bare).into())
            .collect();
        prop_assert_eq!(counted as usize, expected.len());
        prop_assert_eq!(&relayed, &expected);
        let expected_tags: Vec<Option<&str>> = events
            .iter()
            .filter(|(.., kind)| *kind != 2 || framing == Framing::LengthPrefixed)
            .map(|(tag, ..)| Some(tag.as_str()))
            .collect();
        prop_assert_eq!(tags, expected_tags);
    }
}

#[test]
fn frames_before_broken_msgpack_are_relayed_and_the_error_follows() {
    let data = Value::Map(vec![("a".into(), 1.into())]);
    let mut stream = encoded("t/1", &data, Framing::Bare);
    stream.extend(encoded("t/2", &data, Framing::Bare));
    stream.push(0xc1);
    let mut chunks = Vec::new();
    let err = FrameCodec::new(1 << 20)
        .decode_chunks(&mut BytesMut::from(&stream[..]), |_| true, &mut chunks)
        .unwrap_err();
    assert!(matches!(err, FrameError::InvalidMsgpack), "{err}");
    assert_eq!(chunks.len(), 1, "one run");
    assert_eq!(chunks[0].events, 2);
}

#[test]
fn a_large_event_is_read_into_room_that_grows_with_the_data_not_with_its_header() {
    let big = Value::from("x".repeat(300 * 1024));
    let frame = encoded("t/big", &big, Framing::Bare);
    let next = encoded("t/next", &big, Framing::Bare);
    let mut codec = FrameCodec::new(1 << 30);
    let mut buffer = BytesMut::from(&frame[..64]);
    let mut chunks = Vec::new();
    codec
        .decode_chunks(&mut buffer, |_| true, &mut chunks)
        .unwrap();
    assert!(chunks.is_empty());
    assert!(
        buffer.capacity() <= 128 * 1024,
        "a header alone made room for {} bytes",
        buffer.capacity()
    );
    // The rest, and the start of the next frame, which stays behind.
    buffer.extend_from_slice(&frame[64..]);
    buffer.extend_from_slice(&next[..100]);
    codec
        .decode_chunks(&mut buffer, |_| true, &mut chunks)
        .unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        (chunks[0].bytes.as_ref(), chunks[0].events),
        (&frame[..], 1)
    );
    assert_eq!(&buffer[..], &next[..100]);
}

#[test]
fn a_large_run_followed_by_a_dropped_frame_is_relayed_without_it() {
    let big = Value::from("x".repeat(300 * 1024));
    let frame = encoded("t/big", &big, Framing::Bare);
    let mut stream = frame.clone();
    stream.extend(encoded("t/dropped", &big, Framing::Bare));
    let chunks = relayed_keeping(&stream, |nth| nth == 1);
    let frames: Vec<bytes::Bytes> = chunks.iter().flat_map(Chunk::frames).collect();
    assert_eq!(frames, [frame]);
}

/// The chunks relayed from `stream` read at once, keeping the frames whose place (from 1)
/// `keep` accepts.
fn relayed_keeping(stream: &[u8], keep: impl Fn(usize) -> bool) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut seen = 0;
    FrameCodec::new(1 << 20)
        .decode_chunks(
            &mut BytesMut::from(stream),
            |_| {
                seen += 1;
                keep(seen)
            },
            &mut chunks,
        )
        .unwrap();
    chunks
}

#[test]
fn a_body_length_written_longer_than_needed_is_rewritten_and_a_refused_one_dropped() {
    let data = Value::Map(vec![("a".into(), 1.into())]);
    let canonical = encoded("t/x", &data, Framing::Bare);
    // The same frame with its 10-odd-byte body length as bin16.
    let mut long = canonical[..12].to_vec();
    long.extend_from_slice(&[0xc5, 0x00, canonical[13]]);
    long.extend_from_slice(&canonical[14..]);
    let mut stream = canonical.clone();
    stream.extend_from_slice(&long);
    stream.extend_from_slice(&canonical);
    let chunks = relayed_keeping(&stream, |nth| nth != 3);
    let frames: Vec<bytes::Bytes> = chunks.iter().flat_map(Chunk::frames).collect();
    assert_eq!(frames, [canonical.clone(), canonical]);
    assert_eq!(chunks.len(), 2, "the rewritten frame ends the run");
}

#[test]
fn bare_frames_match_salts_bytes() {
    // golden/02_pull_socket_wire_hex.txt: what Salt's fire_event wrote.
    let data = Value::Map(vec![
        ("a".into(), 1.into()),
        ("s".into(), "héllo".into()),
        (
            "l".into(),
            Value::Array(vec![1.into(), 2.5.into(), Value::Nil, true.into()]),
        ),
        ("_stamp".into(), "2026-11-24T09:01:50.409594".into()),
    ]);
    let frame = encoded("golden/wire/test", &data, Framing::Bare);
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        concat!(
            "82a46865616480a4626f6479c450676f6c64656e2f776972652f746573740a0a84a16101a173a668c3a96c6c6f",
            "a16c9401cb4004000000000000c0c3a65f7374616d70ba323032362d31312d32345430393a30313a35302e343039353934"
        )
    );
    let prefixed = encoded("golden/wire/test", &data, Framing::LengthPrefixed);
    assert_eq!(&prefixed[..4], &(frame.len() as u32).to_be_bytes());
    assert_eq!(&prefixed[4..], frame.as_slice());
}

#[test]
fn a_tag_is_cut_at_the_first_blank_line_like_salt() {
    let event = decode_body(b"a\n\nb\n\n\x80").unwrap_err();
    assert!(matches!(event, BodyError::Data(_)));
    assert!(matches!(
        decode_body(b"no separator"),
        Err(BodyError::NoTagEnd)
    ));
    assert!(matches!(
        decode_body(b"\xff\n\n\x80"),
        Err(BodyError::TagNotUtf8)
    ));
    assert_eq!(decode_body(b"\n\n\x80").unwrap().tag, "");
}

#[test]
fn canonical_frames_relay_as_received_and_others_are_rewritten() {
    let relayed = |bytes: &[u8]| {
        let mut chunks = Vec::new();
        FrameCodec::new(1 << 20)
            .decode_chunks(&mut BytesMut::from(bytes), |_| true, &mut chunks)
            .unwrap();
        chunks.iter().flat_map(Chunk::frames).collect::<Vec<_>>()
    };
    let data = Value::Map(vec![("a".into(), 1.into())]);
    for framing in [Framing::Bare, Framing::LengthPrefixed] {
        assert_eq!(
            relayed(&encoded("t/x", &data, framing)),
            [encoded("t/x", &data, Framing::Bare)]
        );
    }
    // No `head`, and the body as str: still an event, rewritten as Salt writes frames.
    assert_eq!(
        relayed(b"\x81\xa4body\xa6t/y\n\n\x80"),
        [encoded("t/y", &Value::Map(vec![]), Framing::Bare)]
    );
}

/// Regression: the body of a canonical frame was located from the frame's length, which cut one
/// or two bytes off bodies of 242-255 and 65521-65535 bytes.
#[test]
fn canonical_body_is_exact_for_every_bin_header_size() {
    for len in (0..300).chain(65_400..65_600).chain([70_000, 1 << 20]) {
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut frame = Vec::new();
        encode_frame(&body, Framing::Bare, &mut frame);
        assert_eq!(
            canonical_body(&bytes::Bytes::from(frame)).as_ref(),
            body.as_slice(),
            "body of {len} bytes"
        );
    }
}
