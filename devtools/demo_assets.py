"""The demo's creatives, drawn with Pillow: banners, a logo and a product screenshot carrying the
merchant's name, so `make demo` ships real images instead of placeholders.

Everything here is a pure function returning PNG bytes; the drawing is fixed (no randomness), so
two runs produce the same files. The font is Pillow's bundled scalable font, so no system font
is needed; bold is imitated with a thin stroke in the text's own colour.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

# CrazyCall's palette: a warm orange on deep navy, with a fresh green for "connected" states.
NAVY = (23, 32, 56)
NAVY_LIGHT = (36, 50, 84)
ORANGE = (255, 107, 53)
ORANGE_DARK = (222, 82, 32)
WHITE = (255, 255, 255)
INK = (33, 37, 41)
MUTED = (108, 117, 125)
LINE = (226, 230, 236)
PAPER = (246, 247, 250)
GREEN = (46, 170, 110)
RED = (220, 68, 68)
AMBER = (240, 173, 40)

TAGLINE = "The cloud call center that dials for you"


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    *,
    size: int,
    fill: tuple[int, int, int],
    bold: bool = False,
    anchor: str = "la",
) -> None:
    # The stroke that imitates bold smudges small text: below 18 px bold is only darker ink.
    stroke = 1 if bold and size >= 18 else 0
    draw.text(xy, text, font=_font(size), fill=fill, anchor=anchor, stroke_width=stroke, stroke_fill=fill)


def _text_width(text: str, size: int) -> float:
    return _font(size).getlength(text)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _horizontal_gradient(size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    width, height = size
    strip = Image.new("RGB", (width, 1))
    for x in range(width):
        t = x / max(width - 1, 1)
        strip.putpixel((x, 0), tuple(round(a + (b - a) * t) for a, b in zip(left, right, strict=True)))
    return strip.resize((width, height))


def _mark(draw: ImageDraw.ImageDraw, x: float, y: float, size: float) -> None:
    """The CrazyCall mark: an orange rounded tile with a handset and two sound waves."""
    draw.rounded_rectangle((x, y, x + size, y + size), radius=size * 0.24, fill=ORANGE)
    s = size
    # Handset: two ear/mouth pieces joined by a curved grip.
    draw.arc(
        (x + s * 0.18, y + s * 0.18, x + s * 0.78, y + s * 0.82),
        start=110,
        end=250,
        fill=WHITE,
        width=max(2, int(s * 0.11)),
    )
    draw.rounded_rectangle((x + s * 0.24, y + s * 0.14, x + s * 0.44, y + s * 0.30), radius=s * 0.05, fill=WHITE)
    draw.rounded_rectangle((x + s * 0.24, y + s * 0.70, x + s * 0.44, y + s * 0.86), radius=s * 0.05, fill=WHITE)
    # Sound waves.
    for i, r in enumerate((0.16, 0.28)):
        cx, cy = x + s * 0.52, y + s * 0.5
        draw.arc(
            (cx - s * r, cy - s * r, cx + s * r, cy + s * r),
            start=-45,
            end=45,
            fill=WHITE,
            width=max(2, int(s * (0.07 - i * 0.01))),
        )


def _wordmark(draw: ImageDraw.ImageDraw, x: float, y: float, size: int, *, on_dark: bool) -> float:
    """'CrazyCall' with 'Call' in orange; returns the width drawn."""
    first = "Crazy"
    _text(draw, (x, y), first, size=size, fill=WHITE if on_dark else NAVY, bold=True, anchor="lm")
    offset = _text_width(first, size) + 2
    _text(draw, (x + offset, y), "Call", size=size, fill=ORANGE, bold=True, anchor="lm")
    return offset + _text_width("Call", size)


def _button(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], label: str, size: int) -> None:
    draw.rounded_rectangle(box, radius=(box[3] - box[1]) / 2, fill=ORANGE)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    _text(draw, (cx, cy), label, size=size, fill=WHITE, bold=True, anchor="mm")


def banner_leaderboard() -> bytes:
    """728×90 leaderboard banner."""
    width, height = 728, 90
    image = _horizontal_gradient((width, height), NAVY, NAVY_LIGHT)
    draw = ImageDraw.Draw(image)
    _mark(draw, 16, 17, 56)
    _wordmark(draw, 86, 34, 28, on_dark=True)
    _text(draw, (87, 64), TAGLINE, size=15, fill=(200, 208, 224), anchor="lm")
    # A hint of the product: a tiny waveform between the text and the call to action.
    for i in range(18):
        h = [10, 22, 34, 18, 28, 40, 24, 14, 30, 36, 20, 12, 26, 38, 22, 16, 30, 10][i]
        bx = 420 + i * 7
        draw.rounded_rectangle((bx, 45 - h / 2, bx + 3, 45 + h / 2), radius=1.5, fill=ORANGE if i % 5 else GREEN)
    _button(draw, (560, 24, 712, 66), "Try free 14 days", 15)
    draw.rectangle((0, 0, width - 1, height - 1), outline=NAVY)
    return _png(image)


def banner_rectangle() -> bytes:
    """300×250 medium rectangle banner."""
    width, height = 300, 250
    image = Image.new("RGB", (width, height), NAVY)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 120), fill=NAVY_LIGHT)
    _mark(draw, 20, 20, 44)
    _wordmark(draw, 74, 42, 24, on_dark=True)
    _text(draw, (20, 88), "Call more leads.", size=20, fill=WHITE, bold=True, anchor="lm")
    _text(draw, (20, 140), "Power dialer, call recording", size=14, fill=(200, 208, 224), anchor="lm")
    _text(draw, (20, 160), "and live reports for your team.", size=14, fill=(200, 208, 224), anchor="lm")
    # A phone-screen card with an active call.
    draw.rounded_rectangle((196, 62, 282, 126), radius=10, fill=WHITE)
    draw.ellipse((206, 72, 226, 92), fill=GREEN)
    _text(draw, (232, 78), "Live call", size=10, fill=INK, bold=True, anchor="lm")
    _text(draw, (232, 90), "02:41", size=10, fill=MUTED, anchor="lm")
    draw.rounded_rectangle((206, 102, 272, 116), radius=7, fill=RED)
    _button(draw, (20, 190, 280, 230), "Start your free trial", 16)
    return _png(image)


def logo() -> bytes:
    """600×180 logo on white: the mark, the wordmark and the tagline."""
    width, height = 600, 180
    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    _mark(draw, 30, 40, 100)
    _wordmark(draw, 150, 78, 54, on_dark=False)
    _text(draw, (152, 126), TAGLINE, size=18, fill=MUTED, anchor="lm")
    return _png(image)


def _badge(draw: ImageDraw.ImageDraw, x: float, y: float, label: str, colour: tuple[int, int, int]) -> None:
    w = _text_width(label, 12) + 18
    draw.rounded_rectangle((x, y - 10, x + w, y + 10), radius=10, fill=colour)
    _text(draw, (x + w / 2, y), label, size=12, fill=WHITE, bold=True, anchor="mm")


def screenshot() -> bytes:
    """1200×750 screenshot of the CrazyCall agent console: navigation, today's figures, the call
    queue and the dialer."""
    width, height = 1200, 750
    image = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(image)

    # Sidebar.
    draw.rectangle((0, 0, 220, height), fill=NAVY)
    _mark(draw, 20, 20, 36)
    _wordmark(draw, 66, 38, 22, on_dark=True)
    for i, item in enumerate(("Dialer", "Contacts", "Call history", "Campaigns", "Reports", "Team", "Settings")):
        y = 110 + i * 48
        if i == 0:
            draw.rounded_rectangle((12, y - 18, 208, y + 18), radius=8, fill=NAVY_LIGHT)
            draw.rectangle((12, y - 18, 16, y + 18), fill=ORANGE)
        draw.ellipse((32, y - 6, 44, y + 6), outline=(200, 208, 224), width=2)
        _text(draw, (58, y), item, size=16, fill=WHITE if i == 0 else (200, 208, 224), bold=i == 0, anchor="lm")

    # Top bar.
    draw.rectangle((220, 0, width, 64), fill=WHITE)
    draw.line((220, 64, width, 64), fill=LINE, width=1)
    _text(draw, (248, 32), "Outbound campaign: Spring renewals", size=20, fill=INK, bold=True, anchor="lm")
    _badge(draw, 980, 32, "Available", GREEN)
    draw.ellipse((1110, 14, 1146, 50), fill=ORANGE)
    _text(draw, (1128, 32), "JS", size=14, fill=WHITE, bold=True, anchor="mm")

    # Today's figures.
    cards = (("Calls today", "248"), ("Answered", "71%"), ("Avg. talk time", "3:42"), ("Agents online", "12"))
    for i, (label, value) in enumerate(cards):
        x0 = 248 + i * 176
        draw.rounded_rectangle((x0, 88, x0 + 160, 178), radius=10, fill=WHITE, outline=LINE)
        _text(draw, (x0 + 16, 112), label, size=14, fill=MUTED, anchor="lm")
        _text(draw, (x0 + 16, 148), value, size=30, fill=INK, bold=True, anchor="lm")
    # Calls per hour chart.
    draw.rounded_rectangle((248, 196, 936, 360), radius=10, fill=WHITE, outline=LINE)
    _text(draw, (264, 216), "Calls per hour", size=15, fill=INK, bold=True, anchor="lm")
    bars = (8, 14, 22, 30, 34, 28, 18, 26, 36, 40, 32, 20)
    for i, value in enumerate(bars):
        x = 280 + i * 52
        draw.rounded_rectangle((x, 344 - value * 2.6, x + 30, 344), radius=4, fill=ORANGE if i != 9 else ORANGE_DARK)
        _text(draw, (x + 15, 352), f"{8 + i}h", size=10, fill=MUTED, anchor="mm")

    # Call queue.
    draw.rounded_rectangle((248, 380, 936, 726), radius=10, fill=WHITE, outline=LINE)
    _text(draw, (264, 402), "Call queue", size=15, fill=INK, bold=True, anchor="lm")
    headers = (("Contact", 264), ("Company", 444), ("Phone", 614), ("Status", 800))
    for label, x in headers:
        _text(draw, (x, 436), label, size=12, fill=MUTED, bold=True, anchor="lm")
    draw.line((264, 450, 920, 450), fill=LINE)
    rows = (
        ("Anna Nowak", "Northwind Ltd", "+1 555 0142", "Connected", GREEN),
        ("Tom Becker", "Blue Harbor", "+1 555 0177", "Ringing", AMBER),
        ("Lena Ortiz", "Acme Corp", "+1 555 0118", "Callback", NAVY_LIGHT),
        ("Raj Patel", "Globex", "+1 555 0190", "No answer", RED),
        ("Mia Chen", "Initech", "+1 555 0105", "Queued", MUTED),
        ("Omar Haddad", "Umbrella Co", "+1 555 0163", "Queued", MUTED),
    )
    for i, (name, company, phone, status, colour) in enumerate(rows):
        y = 476 + i * 40
        if i == 0:
            draw.rectangle((252, y - 18, 932, y + 18), fill=(255, 244, 238))
        _text(draw, (264, y), name, size=14, fill=INK, anchor="lm")
        _text(draw, (444, y), company, size=14, fill=INK, anchor="lm")
        _text(draw, (614, y), phone, size=14, fill=INK, anchor="lm")
        _badge(draw, 800, y, status, colour)

    # Dialer.
    draw.rounded_rectangle((956, 88, 1176, 726), radius=12, fill=WHITE, outline=LINE)
    _text(draw, (1066, 116), "Dialer", size=16, fill=INK, bold=True, anchor="mm")
    draw.ellipse((1026, 140, 1106, 220), fill=(255, 232, 222))
    _text(draw, (1066, 180), "AN", size=24, fill=ORANGE_DARK, bold=True, anchor="mm")
    _text(draw, (1066, 240), "Anna Nowak", size=16, fill=INK, bold=True, anchor="mm")
    _text(draw, (1066, 262), "Connected · 02:41", size=13, fill=GREEN, anchor="mm")
    keys = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")
    for i, key in enumerate(keys):
        cx = 1000 + (i % 3) * 66
        cy = 310 + (i // 3) * 62
        draw.ellipse((cx - 24, cy - 24, cx + 24, cy + 24), fill=PAPER, outline=LINE)
        _text(draw, (cx, cy), key, size=20, fill=INK, anchor="mm")
    draw.rounded_rectangle((986, 570, 1146, 616), radius=23, fill=RED)
    _text(draw, (1066, 593), "Hang up", size=16, fill=WHITE, bold=True, anchor="mm")
    for i, label in enumerate(("Mute", "Hold", "Record")):
        cx = 1000 + i * 66
        draw.ellipse((cx - 20, 640, cx + 20, 680), fill=PAPER, outline=LINE)
        _text(draw, (cx, 696), label, size=11, fill=MUTED, anchor="mm")
    return _png(image)


@dataclass(frozen=True)
class DemoImage:
    kind: str  # a tracking.models.Creative.Kind value
    title: str
    filename: str
    draw: Callable[[], bytes]
    size: tuple[int, int]


DEMO_IMAGES: tuple[DemoImage, ...] = (
    DemoImage("banner", "Leaderboard banner 728×90", "crazycall-banner-728x90.png", banner_leaderboard, (728, 90)),
    DemoImage("banner", "Rectangle banner 300×250", "crazycall-banner-300x250.png", banner_rectangle, (300, 250)),
    DemoImage("logo", "CrazyCall logo", "crazycall-logo.png", logo, (600, 180)),
    DemoImage("screenshot", "Agent console screenshot", "crazycall-agent-console.png", screenshot, (1200, 750)),
)
