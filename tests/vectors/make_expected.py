"""Write the ``tests/vectors/xml/`` cases defined here, deriving expected events with the
stdlib ``xml.etree.ElementTree`` (an independent code path from both backends).

Run ``python tests/vectors/make_expected.py`` to (re)write the files, ``--check`` to
verify the committed files match.  Only files named by the cases below are touched
(``y_rust_*``/``n_rust_*`` cases belong to the Rust side and are left alone).

* ``Y_CASES``: name → (document, limits).  The expected events are those ElementTree's
  ``XMLPullParser`` reports for the whole document: the root's start (with the
  ``start-ns`` declarations before it) is the header, each depth-1 end is an element
  (its tail cleared: text between stanzas is not part of them), the root's end is the
  stream end.  Every document here must be valid under the XMPP rules (RFC 6120 §11),
  which ElementTree does not check: that part is by hand.
* ``N_CASES``: name → (valid prefix, invalid rest, condition, limits).  The file holds
  prefix + rest; the expected events are ElementTree's events for the prefix alone, and
  the error is ``condition``.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

XML_DIR = Path(__file__).parent / "xml"
NS_XML = "http://www.w3.org/XML/1998/namespace"

DECL = b"<?xml version='1.0'?>"
HDR = (
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    b" to='example.com' version='1.0'>"
)
H = DECL + HDR
END = b"</stream:stream>"
MSG = b"<message to='juliet@example.com' type='chat'><body>hi</body></message>"

Limits = dict[str, int]


def _stanza_of(size: int) -> bytes:
    """``<message><body>xx…</body></message>`` of exactly ``size`` bytes."""
    shell = b"<message><body></body></message>"
    return shell[:15] + b"x" * (size - len(shell)) + shell[15:]


Y_CASES: dict[str, tuple[bytes, Limits]] = {
    "header_only": (H, {}),
    "header_no_decl": (HDR, {}),
    "header_decl_double_quotes": (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams"'
        b' to="example.com" version="1.0">',
        {},
    ),
    "header_decl_encoding_lowercase": (b"<?xml version='1.0' encoding='utf-8'?>" + HDR, {}),
    "header_whitespace_prolog": (b" \r\n\t" + HDR, {}),
    "header_whitespace_after_decl": (DECL + b"\n\n  " + HDR, {}),
    # U+FEFF inside a stanza is a character like any other (RFC 6120 §11.6)
    "feff_in_text_and_value": (
        H + b"<message id='\xef\xbb\xbf'><body>\xef\xbb\xbfhi</body></message>",
        {},
    ),
    "header_full_attributes": (
        DECL + b"<stream:stream from='juliet@im.example.com' to='im.example.com'"
        b" id='++TR84Sm6A3hnt3Q065SnAbbk3Y=' version='1.0' xml:lang='en'"
        b" xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        {},
    ),
    "header_many_namespaces": (
        DECL + b"<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback'"
        b" xmlns:stream='http://etherx.jabber.org/streams' xmlns:a='urn:a' xmlns:b='urn:b'"
        b" xmlns:c='urn:c' xmlns:d='urn:d' from='a.example' to='b.example' version='1.0'>"
        b"<db:result from='a.example' to='b.example'>"
        b"b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</db:result>",
        {},
    ),
    "header_component": (
        b"<stream:stream xmlns='jabber:component:accept'"
        b" xmlns:stream='http://etherx.jabber.org/streams' to='plays.shakespeare.lit'>"
        b"<handshake>aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e</handshake>",
        {},
    ),
    "header_other_prefix": (
        b"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'>"
        b"<message/></s:stream>",
        {},
    ),
    "header_unchecked_namespace": (
        b"<stream:stream xmlns:stream='urn:not-streams' xmlns='jabber:client'>",
        {},
    ),
    "header_empty_element": (
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'/>",
        {},
    ),
    "header_then_end": (H + END, {}),
    "message_basic": (H + MSG, {}),
    "stream_end": (H + MSG + END, {}),
    "stream_end_trailing_whitespace": (H + MSG + END + b" \n\r\n\t ", {}),
    "end_tag_whitespace": (H + b"<message></message \n>" + b"</stream:stream\t>", {}),
    "keepalives": (H + b" " + MSG + b"\n" + b"<presence/>" + b"\r\n" + b"\t \n" + MSG + b"   ", {}),
    "multiple_stanzas": (
        H + MSG + b"<presence from='romeo@example.net/orchard' type='unavailable'/>"
        b"<iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>" + MSG,
        {},
    ),
    "stream_features": (
        H + b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
        b"</starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
        b"<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>"
        b"</stream:features>",
        {},
    ),
    "stream_error": (
        H + b"<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>oops</text>"
        b"</stream:error>" + END,
        {},
    ),
    "nested_namespaces": (
        H + b"<iq type='result' id='r1'><query xmlns='jabber:iq:roster' ver='ver7'>"
        b"<item jid='nurse@example.com' subscription='both'><group>Friends</group></item>"
        b"<item jid='romeo@example.net'><x xmlns='urn:x'><y/></x><group>Lovers</group></item>"
        b"</query></iq>",
        {},
    ),
    "prefixed_elements": (
        H + b"<iq type='result' id='v1'><v:query xmlns:v='jabber:iq:version'>"
        b"<v:name>xmppx</v:name><v:version>0.1</v:version></v:query></iq>",
        {},
    ),
    "prefix_rebinding": (
        H + b"<message xmlns:p='urn:one'><p:a><p:b xmlns:p='urn:two'><p:c/></p:b><p:d/></p:a>"
        b"</message>",
        {},
    ),
    "default_namespace_undeclared": (
        H + b"<message><x xmlns=''><y/></x><z xmlns='urn:z'><w xmlns=''/></z></message>",
        {},
    ),
    "namespaced_attributes": (
        H + b"<message xmlns:a='urn:a' xmlns:b='urn:b' a:foo='1' foo='2' b:foo='3'>"
        b"<x a:bar='4' xmlns:a='urn:a2'/></message>",
        {},
    ),
    "same_prefix_two_uris_attributes": (
        H + b"<message xmlns:p='urn:p' xmlns:q='urn:q' p:x='1' q:x='2'/>",
        {},
    ),
    "xml_lang": (
        H + b"<message xml:lang='en'><body>hi</body><body xml:lang='fr'>salut</body></message>",
        {},
    ),
    "xml_prefix_declared": (
        H + b"<message xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='de'/>",
        {},
    ),
    "mixed_content_xhtml": (
        H + b"<message><body>Wow, I'm green with envy!</body>"
        b"<html xmlns='http://jabber.org/protocol/xhtml-im'>"
        b"<body xmlns='http://www.w3.org/1999/xhtml'><p style='font-size:large'>"
        b"<em>Wow</em>, I&apos;m <span style='color:green'>green</span> with "
        b"<strong>envy</strong>!</p></body></html></message>",
        {},
    ),
    "cdata": (
        H + b"<message><body><![CDATA[<b>&amp; ]] ]>]]>tail<![CDATA[]]><![CDATA[x]]></body>"
        b"</message>",
        {},
    ),
    "entities": (
        H + b"<message to='&lt;&gt;&amp;&apos;&quot;'><body>&lt;&gt;&amp;&apos;&quot;</body>"
        b"</message>",
        {},
    ),
    "char_refs": (
        H + b"<message id='&#65;&#x42;&#x1F600;'><body>&#72;&#105;&#x20;&#x263A;&#128512;"
        b"&#x10FFFF;&#xFFFD;&#9;&#xD7FF;&#xE000;&#x10000;</body></message>",
        {},
    ),
    "non_ascii": (
        H
        + "<message><body>Grüße, 日本語, ☺, 😀, مرحبا, \u00a0\u2028</body>"
        "<subject xml:lang='ja'>件名</subject></message>".encode(),
        {},
    ),
    "non_ascii_names": (
        H + "<message><café xmlns='urn:x' año='1'><日本 xmlns='urn:y'/></café></message>".encode(),
        {},
    ),
    "name_characters": (
        H + b"<message><_a-b.c xmlns='urn:x' x-y.z_1='1' _='2'><a1.2-3/></_a-b.c></message>",
        {},
    ),
    "del_and_c1_controls": (
        # U+007F..U+009F are XML 1.0 Chars (only XML 1.1 restricts them)
        H + b"<message id='\x7f\xc2\x80\xc2\x9f'><body>a\x7fb\xc2\x85c\xc2\x9f</body></message>",
        {},
    ),
    "crlf_text": (H + b"<message><body>a\r\nb\rc\n\r\nd\r</body></message>", {}),
    "attribute_normalisation": (
        H + b"<message id='a\tb\nc\r\nd\re' type='&#9;&#10;&#13;' to='  x  '/>",
        {},
    ),
    "attribute_quotes": (H + b'<message id="it\'s" type=\'say "hi"\'/>', {}),
    "gt_and_brackets": (H + b"<message id='a>b'><body>1 > 0 ]] ] &gt;</body></message>", {}),
    "whitespace_in_tags": (
        H + b"<message\n  to = 'a@b'\t type=\"chat\"  ><body  >x</body\n></message  >",
        {},
    ),
    "whitespace_text_kept": (
        H + b"<message>\n  <body>  </body>\n  <thread>t</thread>\n</message>",
        {},
    ),
    "empty_forms": (H + b"<presence/><presence></presence><presence ></presence >", {}),
    "long_text": (H + b"<message><body>" + b"0123456789" * 400 + b"</body></message>", {}),
    "depth_at_limit": (
        H + b"<message><a><b><c></c></b></a></message><presence><x/></presence>",
        {"max_depth": 4},
    ),
    "stanza_at_max_bytes": (
        H + _stanza_of(100) + b" " + _stanza_of(100),
        {"max_stanza_bytes": 100},
    ),
    "attributes_at_limit": (
        H + b"<message a='1' b='2' xmlns:p='urn:p' p:c='3'/>",
        {"max_attributes": 4},
    ),
    "header_at_max_buffer": (H, {"max_buffer_bytes": len(H)}),
    "stanza_limit_ignores_keepalives": (
        H + b" " * 300 + _stanza_of(60) + b"\n" * 300 + _stanza_of(60) + b" " * 300,
        {"max_stanza_bytes": 60},
    ),
    # -- keepalives between stanzas (whitespace however written) ---------------------
    "keepalive_references_between_stanzas": (H + b"<a/><b/>&#32;<c/>&#x20;&#9;<d/>", {}),
    "keepalive_cdata_between_stanzas": (H + b"<a/><![CDATA[ ]]><b/><![CDATA[]]><c/>", {}),
    "limit_stanza_bytes_cdata_keepalive_not_counted": (
        H + b"<![CDATA[]]><iq/>",
        {"max_stanza_bytes": 12},
    ),
    "limit_stanza_bytes_counted_from_lt_after_reference": (
        H + b"&#32;<a/><message>" + b"x" * 20 + b"</message>",
        {"max_stanza_bytes": 39},
    ),
}

N_CASES: dict[str, tuple[bytes, bytes, str, Limits]] = {
    # -- encodings and the XML declaration -----------------------------------------
    # RFC 6120 §11.6: U+FEFF is a ZERO WIDTH NO-BREAK SPACE wherever it stands
    "bom_utf8": (b"", b"\xef\xbb\xbf" + H, "not-well-formed", {}),
    "feff_after_whitespace": (b"", b" \xef\xbb\xbf" + H, "not-well-formed", {}),
    "feff_between_stanzas": (H + b"<a/>", b"\xef\xbb\xbf<b/>", "bad-format", {}),
    "bom_utf16be": (b"", b"\xfe\xff" + H.decode().encode("utf-16-be"), "unsupported-encoding", {}),
    "bom_utf16le": (b"", b"\xff\xfe" + H.decode().encode("utf-16-le"), "unsupported-encoding", {}),
    "bom_utf32be": (
        b"",
        b"\x00\x00\xfe\xff" + H.decode().encode("utf-32-be"),
        "unsupported-encoding",
        {},
    ),
    "utf16le_without_bom": (b"", H.decode().encode("utf-16-le"), "not-well-formed", {}),
    # the pseudo-attributes are read in order: the encoding is refused before the
    # stray quote after it is met (expat meets the quote first)
    "decl_encoding_latin1_then_stray_quote": (
        b"",
        b"<?xml version='1.0' encoding='latin1''?>" + HDR,
        "unsupported-encoding",
        {},
    ),
    "decl_encoding_latin1": (
        b"",
        b"<?xml version='1.0' encoding='ISO-8859-1'?>" + HDR,
        "unsupported-encoding",
        {},
    ),
    "decl_encoding_utf16": (
        b"",
        b"<?xml version='1.0' encoding='UTF-16'?>" + HDR,
        "unsupported-encoding",
        {},
    ),
    "decl_version_11": (b"", b"<?xml version='1.1'?>" + HDR, "not-well-formed", {}),
    "decl_not_first": (b"", b"  " + H, "not-well-formed", {}),
    "decl_without_question_mark": (
        b"",
        b"<?xml version='1.0'>" + HDR,
        "not-well-formed",
        {},
    ),
    "decl_unterminated_then_header": (
        b"",
        b"<?xml version='1.0'?" + HDR,
        "not-well-formed",
        {},
    ),
    "decl_twice": (b"", DECL + DECL + HDR, "not-well-formed", {}),
    "decl_after_header": (H, DECL + MSG, "not-well-formed", {}),
    "decl_in_stanza": (H, b"<message><?xml version='1.0'?></message>", "not-well-formed", {}),
    # -- restricted XML (RFC 6120 §11.1) -------------------------------------------
    "doctype": (b"", DECL + b"<!DOCTYPE stream:stream>" + HDR, "restricted-xml", {}),
    "doctype_internal_subset": (
        b"",
        b"<!DOCTYPE stream [<!ELEMENT stream ANY>]>" + HDR,
        "restricted-xml",
        {},
    ),
    "entity_declaration": (
        b"",
        DECL + b"<!DOCTYPE s [<!ENTITY x 'y'>]>" + HDR + b"<message><body>&x;</body></message>",
        "restricted-xml",
        {},
    ),
    "doctype_in_stanza": (H, b"<message><!DOCTYPE x></message>", "restricted-xml", {}),
    "comment_prolog": (b"", b"<!-- hello -->" + HDR, "restricted-xml", {}),
    "comment_between_stanzas": (H + MSG, b"<!-- hello -->" + MSG, "restricted-xml", {}),
    "comment_in_stanza": (
        H,
        b"<message><!-- hello --><body>x</body></message>",
        "restricted-xml",
        {},
    ),
    "pi_prolog": (b"", b"<?xml-stylesheet href='a.xsl'?>" + HDR, "restricted-xml", {}),
    "pi_between_stanzas": (H + MSG, b"<?foo bar?>" + MSG, "restricted-xml", {}),
    "pi_in_stanza": (H, b"<message><?foo bar?></message>", "restricted-xml", {}),
    "undefined_entity": (H, b"<message><body>&nbsp;</body></message>", "restricted-xml", {}),
    # Namespaces in XML 1.0 §7: entity names contain no colon
    "entity_name_with_colon": (
        H,
        b"<message><body>&a:b;</body></message>",
        "not-well-formed",
        {},
    ),
    "undefined_entity_attribute": (H, b"<message id='&copy;'/>", "restricted-xml", {}),
    "undefined_entity_before_syntax_error_in_tag": (
        H,
        b"<message to='&nbsp;' id/>",
        "restricted-xml",
        {},
    ),
    # -- characters ----------------------------------------------------------------
    "utf8_overlong_2": (H, b"<message><body>\xc0\xaf</body></message>", "unsupported-encoding", {}),
    "utf8_overlong_3": (
        H,
        b"<message><body>\xe0\x80\xaf</body></message>",
        "unsupported-encoding",
        {},
    ),
    "utf8_surrogate": (
        H,
        b"<message><body>\xed\xa0\x80</body></message>",
        "unsupported-encoding",
        {},
    ),
    "utf8_truncated": (H, b"<message><body>\xe2\x82</body></message>", "unsupported-encoding", {}),
    "utf8_beyond_max": (
        H,
        b"<message><body>\xf4\x90\x80\x80</body></message>",
        "unsupported-encoding",
        {},
    ),
    "utf8_invalid_byte": (H, b"<message><body>\xff</body></message>", "unsupported-encoding", {}),
    "utf8_invalid_in_attribute": (H, b"<message id='\xc3('/>", "unsupported-encoding", {}),
    "utf8_invalid_in_name": (H, b"<mess\xe9age/>", "unsupported-encoding", {}),
    "utf8_invalid_in_end_tag": (H, b"<message></mess\xe9age>", "unsupported-encoding", {}),
    "utf8_invalid_between_stanzas": (H + MSG, b"\r\n\xc3\x28", "unsupported-encoding", {}),
    "utf8_invalid_in_header": (
        DECL,
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
        b" to='ex\xffample.com' version='1.0'>",
        "unsupported-encoding",
        {},
    ),
    # where no character may stand, the first byte of one is not-well-formed, whatever
    # follows it: right after a value, in a character reference, after an end tag's name
    "utf8_invalid_right_after_value": (H, b"<message a='1'\xc3\x28/>", "not-well-formed", {}),
    "utf8_invalid_in_char_reference": (
        H,
        b"<message>&#x9\xc3\x28;</message>",
        "not-well-formed",
        {},
    ),
    "utf8_invalid_after_end_tag_name": (H, b"<message></message \xc3\x28>", "not-well-formed", {}),
    "utf8_invalid_in_attribute_name": (
        H,
        b"<message a='1' \xc3\x28='x'/>",
        "unsupported-encoding",
        {},
    ),
    "utf8_invalid_in_entity_name_in_value": (
        H,
        b"<message a='&\xe2 x'/>",
        "unsupported-encoding",
        {},
    ),
    "utf8_invalid_in_entity_name": (
        H,
        b"<message>&a\xc3\x28;</message>",
        "unsupported-encoding",
        {},
    ),
    "utf8_invalid_in_end_tag_after_second_colon": (
        H,
        b"<message></a:b:c\xc3\x28>",
        "not-well-formed",
        {},
    ),
    # before the header and after the stream's end no byte is read as a character: any
    # that is not whitespace is not-well-formed
    "utf8_invalid_before_header": (b"", b"\n\xff" + HDR, "not-well-formed", {}),
    "utf8_invalid_after_end": (H + END, b" \xc3\x28", "not-well-formed", {}),
    "utf8_invalid_after_decl": (DECL, b"\xc3\x28" + HDR, "not-well-formed", {}),
    "utf8_invalid_in_decl": (b"", b"<?xml version='1.0' \xf0\x80?>" + HDR, "not-well-formed", {}),
    "non_ascii_in_decl_before_limit_buffer": (
        b"",
        b"<?xml \xc3\xa9?>" + HDR,
        "not-well-formed",
        {"max_buffer_bytes": 8},
    ),
    "utf8_invalid_after_cdata_keepalive": (
        H + MSG,
        b"<![CDATA[ ]]>\xc3<message/>",
        "unsupported-encoding",
        {},
    ),
    # a '<' right after a lead byte opens nothing: the sequence is bad at its lead
    "utf8_cut_lead_before_lt_in_value": (H, b"<b c='\xe0<'/>", "unsupported-encoding", {}),
    "utf8_cut_lead_before_lt_before_limit": (
        H,
        b"<message>\xe0<</message>",
        "unsupported-encoding",
        {"max_stanza_bytes": 11},
    ),
    "nul_in_text": (H, b"<message><body>a\x00b</body></message>", "not-well-formed", {}),
    "control_char_in_text": (H, b"<message><body>a\x01b</body></message>", "not-well-formed", {}),
    "control_char_in_attribute": (H, b"<message id='a\x1bb'/>", "not-well-formed", {}),
    "nonchar_fffe": (H, b"<message><body>\xef\xbf\xbe</body></message>", "not-well-formed", {}),
    "charref_zero": (H, b"<message><body>&#0;</body></message>", "not-well-formed", {}),
    "charref_surrogate": (H, b"<message><body>&#xD800;</body></message>", "not-well-formed", {}),
    "charref_control": (H, b"<message id='&#x1B;'/>", "not-well-formed", {}),
    "charref_fffe": (H, b"<message><body>&#xFFFE;</body></message>", "not-well-formed", {}),
    "charref_too_big": (H, b"<message><body>&#x110000;</body></message>", "not-well-formed", {}),
    # -- syntax ----------------------------------------------------------------------
    "bare_ampersand": (H, b"<message><body>fish & chips</body></message>", "not-well-formed", {}),
    "entity_without_semicolon": (
        H,
        b"<message><body>&amp chips</body></message>",
        "not-well-formed",
        {},
    ),
    "lt_in_attribute": (H, b"<message id='a<b'/>", "not-well-formed", {}),
    "lt_in_text": (H, b"<message><body>a < b</body></message>", "not-well-formed", {}),
    "unquoted_attribute": (H, b"<message id=a/>", "not-well-formed", {}),
    "unterminated_attribute": (H, b"<message id='abc></message><presence/>", "not-well-formed", {}),
    "attribute_without_value": (H, b"<message id/>", "not-well-formed", {}),
    "attributes_without_space": (H, b"<message id='1'to='a'/>", "not-well-formed", {}),
    "duplicate_attribute": (H, b"<message id='1' id='2'/>", "not-well-formed", {}),
    "duplicate_attribute_after_prefix_resolution": (
        H,
        b"<message xmlns:p='urn:a' xmlns:q='urn:a' p:x='1' q:x='2'/>",
        "not-well-formed",
        {},
    ),
    "duplicate_namespace_declaration": (
        H,
        b"<message xmlns:p='urn:a' xmlns:p='urn:b'/>",
        "not-well-formed",
        {},
    ),
    "undeclared_prefix_element": (H, b"<p:message/>", "not-well-formed", {}),
    "undeclared_prefix_attribute": (H, b"<message p:id='1'/>", "not-well-formed", {}),
    "undeclared_prefix_header": (
        b"",
        b"<stream:stream xmlns='jabber:client'>",
        "not-well-formed",
        {},
    ),
    "prefix_bound_to_empty": (H, b"<message xmlns:p=''/>", "not-well-formed", {}),
    "rebind_xml_prefix": (H, b"<message xmlns:xml='urn:not-xml'/>", "not-well-formed", {}),
    # found by a mutation fuzzer, where the pure-Python backend answered otherwise:
    # a lead byte with too few bytes after it when '<' arrives, whatever they are
    "utf8_lead_then_ascii_then_comment": (H, b"\xf0f<!-- c -->", "unsupported-encoding", {}),
    "utf8_cut_by_late_decl": (H, b"<a>\xe0<?xml version='1.0'?>", "unsupported-encoding", {}),
    # only whitespace between the XML declaration and the header
    "quote_between_decl_and_header": (DECL, b'"' + HDR, "not-well-formed", {}),
    "ampersand_in_decl": (b"", b"<?xml &" + b" " * 40, "not-well-formed", {}),
    # an entity name that is not UTF-8 shows it at the ';' that also shows the entity
    "utf8_invalid_in_entity_name_in_header_value": (
        b"",
        b"<m o='&\xf4;'>",
        "unsupported-encoding",
        {},
    ),
    # a whitespace character reference is a keepalive, and ']' after it text
    "text_after_reference_keepalive": (H, b"&#9;]]>", "bad-format", {}),
    # '}' ends the namespace in an expanded name; expat refuses it in a namespace name
    "namespace_with_closing_brace": (H, b"<m xmlns='urn:a}b'/>", "not-well-formed", {}),
    "prefix_namespace_with_closing_brace": (
        H,
        b"<m xmlns:p='}'><p:x/></m>",
        "not-well-formed",
        {},
    ),
    "header_namespace_with_closing_brace": (
        DECL,
        b"<stream:stream xmlns='}' xmlns:stream='http://etherx.jabber.org/streams'>",
        "not-well-formed",
        {},
    ),
    "bind_xmlns_prefix": (
        H,
        b"<message xmlns:xmlns='http://www.w3.org/2000/xmlns/'/>",
        "not-well-formed",
        {},
    ),
    "bind_prefix_to_xml_namespace": (
        H,
        b"<message xmlns:x='http://www.w3.org/XML/1998/namespace'/>",
        "not-well-formed",
        {},
    ),
    "default_namespace_xml_uri": (
        H,
        b"<message xmlns='http://www.w3.org/XML/1998/namespace'/>",
        "not-well-formed",
        {},
    ),
    "two_colons_in_name": (H, b"<a:b:c xmlns:a='urn:a'/>", "not-well-formed", {}),
    "bad_name_start": (H, b"<1message/>", "not-well-formed", {}),
    "mismatched_end_tag": (H, b"<message><body>x</bodyy></message>", "not-well-formed", {}),
    "end_tag_prefix_mismatch": (
        H,
        b"<p:x xmlns:p='urn:a' xmlns:q='urn:a'></q:x>",
        "not-well-formed",
        {},
    ),
    "stray_end_tag": (H + MSG, b"</message>", "not-well-formed", {}),
    "cdata_end_in_text": (H, b"<message><body>a]]>b</body></message>", "not-well-formed", {}),
    # -- stream level ----------------------------------------------------------------
    "text_at_stream_level": (H + MSG, b"hello" + MSG, "bad-format", {}),
    "text_before_first_stanza": (H, b" \n x" + MSG, "bad-format", {}),
    "entity_at_stream_level": (H, b"&amp;" + MSG, "bad-format", {}),
    "cdata_at_stream_level": (H, b"<![CDATA[x]]>" + MSG, "bad-format", {}),
    # RFC 6120 §4.3.3: a stream header inside the stream, refused at its start tag
    # (the message after it is never held as its content); an empty one too
    "stream_header_inside_stream": (
        H + MSG,
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
        b" to='example.com' version='1.0'>" + MSG,
        "bad-format",
        {},
    ),
    "stream_header_inside_stream_prefixed": (
        H,
        b"<s:stream xmlns:s='http://etherx.jabber.org/streams'/>",
        "bad-format",
        {},
    ),
    "junk_after_end": (H + MSG + END, b" x", "not-well-formed", {}),
    "element_after_end": (H + END, b"<message/>", "not-well-formed", {}),
    "comment_after_end": (H + END, b"<!-- bye -->", "not-well-formed", {}),
    "text_before_header": (b"", b"hello" + HDR, "not-well-formed", {}),
    # -- limits (policy-violation) -----------------------------------------------------
    "limit_stanza_bytes": (H, _stanza_of(101), "policy-violation", {"max_stanza_bytes": 100}),
    "limit_stanza_bytes_second": (
        H + _stanza_of(100),
        b"\n" + _stanza_of(101),
        "policy-violation",
        {"max_stanza_bytes": 100},
    ),
    "limit_stanza_bytes_unterminated_tag": (
        H,
        b"<message to='" + b"a" * 300 + b"'/>",
        "policy-violation",
        {"max_stanza_bytes": 100},
    ),
    "limit_stanza_bytes_counts_end_tag": (
        H,
        _stanza_of(99)[:-1] + b"  >",
        "policy-violation",
        {"max_stanza_bytes": 100},
    ),
    "limit_depth": (
        H + b"<message><a><b><c/></b></a></message>",
        b"<message><a><b><c><d/></c></b></a></message>",
        "policy-violation",
        {"max_depth": 4},
    ),
    "limit_attributes": (
        H,
        b"<message a='1' b='2' c='3' d='4' e='5'/>",
        "policy-violation",
        {"max_attributes": 4},
    ),
    "limit_attributes_counts_namespace_declarations": (
        H,
        b"<message xmlns:p='urn:p' a='1' p:b='2' xmlns:q='urn:q' c='3'/>",
        "policy-violation",
        {"max_attributes": 4},
    ),
    "limit_attributes_header": (b"", H, "policy-violation", {"max_attributes": 3}),
    "limit_buffer_bytes": (b"", H, "policy-violation", {"max_buffer_bytes": len(H) - 1}),
    "limit_buffer_bytes_endless_header": (
        b"",
        b"<stream:stream " + b"a='1' " * 1000,
        "policy-violation",
        {"max_buffer_bytes": 1024},
    ),
    # -- found by differential fuzzing (whole vs chunked, Python vs Rust) ---------------
    "text_after_two_stanzas": (H + b"<a/><b/>", b"x", "bad-format", {}),
    "cdata_end_marker_between_stanzas": (H + b"<iq/>", b"]]>", "bad-format", {}),
    "cdata_lookalike_text_between_stanzas": (H, b"![CDATA[]]>", "bad-format", {}),
    "junk_after_end_after_reference": (H + b"&#32;<a/>" + END, b"'", "not-well-formed", {}),
    "limit_stanza_bytes_after_reference": (
        H + b"&#32;<a/>",
        b"<message>" + b"x" * 20 + b"</message>",
        "policy-violation",
        {"max_stanza_bytes": 38},
    ),
    "limit_stanza_bytes_before_comment": (
        H + b"<iq/>",
        b"<iq><!-- c --></iq>",
        "policy-violation",
        {"max_stanza_bytes": 5},
    ),
    "limit_stanza_bytes_before_pi": (
        H + b"<iq/>",
        b"<?xml version='1.0'?>",
        "policy-violation",
        {"max_stanza_bytes": 5},
    ),
    "limit_stanza_bytes_reference_between_stanzas": (
        H,
        b"&#x20;<x/>",
        "policy-violation",
        {"max_stanza_bytes": 5},
    ),
    "header_entity_before_lt_small_stanza_limit": (
        b"",
        DECL + b"<stream:stream xmlns='&foo;jabber:client' "
        b"xmlns:stream='http:</etherx.jabber.org/streams' to='example.com' version='1.0'>",
        "restricted-xml",
        {"max_stanza_bytes": 60},
    ),
    "utf8_cut_by_comment": (
        H,
        b"<message><body>a\xe0<!--c--></body></message>",
        "unsupported-encoding",
        {},
    ),
    "utf8_cut_by_pi": (
        H,
        b"<message><body>\xf0\x9f<?pi?></body></message>",
        "unsupported-encoding",
        {},
    ),
    # -- in one start tag, what the byte-by-byte reading meets first ---------------------
    "limit_attributes_before_syntax_error": (
        H,
        b"<message a='1' b='2' c='3' d='4' e<",
        "policy-violation",
        {"max_attributes": 4},
    ),
    "limit_attributes_before_duplicate": (
        H,
        b"<message a='1' a='2' b='3' c='4' d='5'/>",
        "policy-violation",
        {"max_attributes": 4},
    ),
    "limit_attributes_before_undefined_entity": (
        H,
        b"<message a='1' b='2' c='3' d='4' e='&foo;'/>",
        "policy-violation",
        {"max_attributes": 4},
    ),
    "undefined_entity_before_limit_attributes": (
        H,
        b"<message a='&foo;' b='2' c='3' d='4' e='5'/>",
        "restricted-xml",
        {"max_attributes": 4},
    ),
    "limit_depth_before_undefined_entity": (
        H,
        b"<message><a><b a='&foo;'/></a></message>",
        "policy-violation",
        {"max_depth": 2},
    ),
    "bad_character_reference_before_limit_attributes": (
        H,
        b"<message a='&#0;' b='2' c='3' d='4' e='5'/>",
        "not-well-formed",
        {"max_attributes": 4},
    ),
    # -- a '<' inside CDATA opens nothing, whatever error follows -------------------------
    "cdata_lt_then_bad_byte_small_depth": (
        H + b"<iq>",
        b"<![CDATA[<p a='\xff']]></iq>",
        "unsupported-encoding",
        {"max_depth": 1},
    ),
    "cdata_lt_then_bad_byte_small_attributes": (
        H + b"<iq>",
        b"<![CDATA[<p a='1' b='2' c='3' d='4' e='\xff']]></iq>",
        "unsupported-encoding",
        {"max_attributes": 4},
    ),
    "cdata_entity_lookalike_then_bad_byte": (
        H + b"<iq>",
        b"<![CDATA[<p a='&foo;' \xff]]></iq>",
        "unsupported-encoding",
        {},
    ),
    "partial_utf8_after_end": (H + MSG + END, b"\xc3", "not-well-formed", {}),
    # -- the input stops inside a token: judged as far as it goes --------------------------
    # (expat holds a ']' that may start ']]>', and a tag until its '>')
    "unfinished_bracket_at_stream_level": (H, b"\r\n\t]", "bad-format", {}),
    "unfinished_bracket_after_reference": (H + MSG, b"&#32;]", "bad-format", {}),
    "unfinished_header_over_limit_attributes": (
        b"",
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
        b" to='example.com' version='1.0' xml:lang='en",
        "policy-violation",
        {"max_attributes": 4},
    ),
    "unfinished_tag_undefined_entity": (H + b"<message>", b"<a b='&foo;", "restricted-xml", {}),
    "unfinished_tag_bad_character_reference": (
        H + b"<message>",
        b"<a b='&#0;",
        "not-well-formed",
        {},
    ),
    "unfinished_end_tag_two_colons": (H + MSG, b"</stream:s:str", "not-well-formed", {}),
    "limit_stanza_in_end_tag_two_colons": (
        H,
        b"</stream:s:stream:x>",
        "not-well-formed",
        {"max_stanza_bytes": 15},
    ),
    "limit_stanza_before_malformed_cdata_opener": (
        H,
        b"<message><![CATA[x]]></message>",
        "policy-violation",
        {"max_stanza_bytes": 10},
    ),
    "unfinished_end_tag_colon_last": (H + MSG, b"</stream: ", "not-well-formed", {}),
    "unfinished_cdata_opener": (H + b"<message>", b"<![C<", "not-well-formed", {}),
    "unfinished_cdata_opener_at_stream_level": (H, b"<![:", "not-well-formed", {}),
    # -- an error in the text after a tag, not in the tag --------------------------------
    "undefined_entity_in_text_before_limit_depth": (
        H,
        b"<iq type='get'>&foo;<query/></iq>",
        "restricted-xml",
        {"max_depth": 1},
    ),
    # -- invalid UTF-8 in the token the stanza limit cuts --------------------------------
    "invalid_utf8_in_tag_before_limit_stanza": (
        H,
        b"<message type='\xe2pe'/>",
        "unsupported-encoding",
        {"max_stanza_bytes": 17},
    ),
    "invalid_utf8_in_text_before_limit_stanza": (
        H,
        b"<message> \xf0\xf0\x9f\x98\x80</message>",
        "unsupported-encoding",
        {"max_stanza_bytes": 12},
    ),
    # (fed a byte at a time: the limit is not met by half a character)
    "bad_name_char_before_limit_depth": (
        H + b"<message>",
        b"<\xc3!/>",
        "unsupported-encoding",
        {"max_depth": 1},
    ),
    "bad_attribute_name_char_before_limit_attributes": (
        H,
        b"<message a='1' b='2' c='3' d='4' \xc3x='5'/>",
        "unsupported-encoding",
        {"max_attributes": 4},
    ),
    # right after a value no character may stand: its first byte is the error, before
    # the limit that cuts it
    "limit_stanza_cuts_char_after_value": (
        H,
        b"<message a='1'\xe2\x82\xac'/>",
        "not-well-formed",
        {"max_stanza_bytes": 16},
    ),
    # in a value it is read whole, so the limit comes first
    "limit_stanza_cuts_char_in_value": (
        H,
        b"<message a='\xe2\x82\xac'/>",
        "policy-violation",
        {"max_stanza_bytes": 14},
    ),
    "limit_stanza_cuts_bad_char_in_value": (
        H,
        b"<message a='\xe2\x28\xac'/>",
        "unsupported-encoding",
        {"max_stanza_bytes": 14},
    ),
    "text_after_end_with_limit_stanza": (
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        b" <a>&amp;</a>\r\n\t<message/>" + END,
        b" x]",
        "not-well-formed",
        {"max_stanza_bytes": 64},
    ),
}


# -- derivation with ElementTree ------------------------------------------------------
def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].rpartition("}")
        return ns, name
    return "", tag


def _element(el: ET.Element, top: bool) -> dict[str, Any]:
    ns, name = _split(el.tag)
    return {
        "name": name,
        "namespace": ns,
        "attrs": [[k, v] for k, v in el.attrib.items()],
        "text": el.text or "",
        "tail": "" if top else (el.tail or ""),
        "children": [_element(c, False) for c in el],
    }


def derive(doc: bytes) -> list[dict[str, Any]]:
    """The stream events in ``doc`` (a stream prefix) as ElementTree reports them."""
    parser = ET.XMLPullParser(events=("start", "end", "start-ns"))
    parser.feed(doc)
    out: list[dict[str, Any]] = []
    nsmap: dict[str, str] = {}
    depth = 0
    for event, obj in parser.read_events():
        if event == "start-ns":
            if depth == 0:
                prefix, uri = obj
                nsmap[prefix] = uri
        elif event == "start":
            if depth == 0:
                ns, name = _split(obj.tag)
                out.append(
                    {
                        "header": {
                            "name": name,
                            "namespace": ns,
                            "attrs": [[k, v] for k, v in obj.attrib.items()],
                            "nsmap": [[k, v] for k, v in nsmap.items()],
                        }
                    }
                )
            depth += 1
        else:
            depth -= 1
            if depth == 1:
                out.append({"element": _element(obj, True)})
            elif depth == 0:
                out.append({"end": True})
    return out


def cases() -> dict[str, tuple[bytes, dict[str, Any]]]:
    """Every case: file stem → (input bytes, expected JSON object)."""
    result: dict[str, tuple[bytes, dict[str, Any]]] = {}
    for name, (doc, limits) in Y_CASES.items():
        obj: dict[str, Any] = {"limits": limits} if limits else {}
        obj["events"] = derive(doc)
        result[f"y_{name}"] = (doc, obj)
    for name, (prefix, rest, condition, limits) in N_CASES.items():
        obj = {"limits": limits} if limits else {}
        obj["events"] = derive(prefix)
        obj["error"] = condition
        result[f"n_{name}"] = (prefix + rest, obj)
    return result


def _dump(obj: dict[str, Any]) -> str:
    """JSON with one event per line (readable diffs), ASCII only."""
    parts = []
    for key, value in obj.items():
        if key == "events":
            inner = ",\n  ".join(json.dumps(e, ensure_ascii=True) for e in value)
            parts.append(f'"events": [\n  {inner}\n ]' if value else '"events": []')
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=True)}")
    return "{\n " + ",\n ".join(parts) + "\n}\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    bad = 0
    XML_DIR.mkdir(parents=True, exist_ok=True)
    for stem, (data, obj) in cases().items():
        xml_path = XML_DIR / f"{stem}.xml"
        json_path = XML_DIR / f"{stem}.json"
        text = _dump(obj)
        if check:
            if (
                not xml_path.exists()
                or xml_path.read_bytes() != data
                or not json_path.exists()
                or json_path.read_text(encoding="utf-8") != text
            ):
                print(f"out of date: {stem}")
                bad += 1
        else:
            xml_path.write_bytes(data)
            json_path.write_text(text, encoding="utf-8")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
