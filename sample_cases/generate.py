#!/usr/bin/env python3
"""Generate the two sample seizures used by evidence-kit's demo, docs and tests.

Every person, phone number, ID number, address, e-mail, wallet, bank and message in the
output is invented. Phone numbers use the 170/171 virtual-operator prefixes with random
digits, ID-card numbers use the non-existent region code 99xxxx, e-mail addresses and
URLs live under example.com / example.cn.

The output is deterministic: fixed random seeds, fixed timestamps, fixed permissions and
SQLite images built in memory. Running the script twice gives byte-identical files
(for the same Python, zlib and SQLite builds).

Usage: python3 sample_cases/generate.py
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import sqlite3
import struct
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
CST = timezone(timedelta(hours=8))
FILE_MODE = 0o644
DIR_MODE = 0o755
SQLITE_PAGE_SIZE = 4096
# SQLite stores the version of the library that last wrote the file at header offset 96.
# Pinning it keeps the images identical across SQLite builds.
SQLITE_VERSION_STAMP = 3_040_001
USDT_CNY = 7.2

Color = tuple[int, int, int]
Row = tuple[object, ...]


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def make_rng(seed: int) -> random.Random:
    """A private, seeded generator: not for cryptography, only for repeatable fake data."""
    return random.Random(seed)  # noqa: S311


def epoch(stamp: str) -> int:
    """Convert 'YYYY-MM-DD HH:MM[:SS]' in China Standard Time to Unix seconds."""
    return int(datetime.fromisoformat(f"{stamp}+08:00").timestamp())


def cst(seconds: int) -> datetime:
    """Unix seconds to an aware datetime in China Standard Time."""
    return datetime.fromtimestamp(seconds, CST)


def fmt(seconds: int) -> str:
    return cst(seconds).strftime("%Y-%m-%d %H:%M:%S")


def random_moment(rng: random.Random, start: str, end: str) -> int:
    return rng.randint(epoch(start), epoch(end))


def display_width(text: str) -> int:
    """Terminal width of text: CJK characters count double."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def fake_phone(rng: random.Random) -> str:
    """Mobile number in the 170/171 virtual-operator ranges; digits are random."""
    return f"17{rng.choice('01')}{rng.randrange(10**8):08d}"


def pretty_phone(phone: str) -> str:
    return f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"


ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def fake_id_card(rng: random.Random, birth: date, male: bool) -> str:
    """18-character ID-like number with region code 99xxxx, which no real region uses."""
    sequence = rng.randrange(50) * 2 + (1 if male else 0)  # 17th digit: odd = male
    body = f"99{rng.randrange(10**4):04d}{birth:%Y%m%d}{rng.randrange(10)}{sequence:02d}"
    total = sum(int(digit) * weight for digit, weight in zip(body, ID_WEIGHTS, strict=True))
    return body + ID_CHECK[total % 11]


# --------------------------------------------------------------------------------------
# Case folder writer: remembers the timestamp of every entry and applies them at the end
# --------------------------------------------------------------------------------------


class CaseTree:
    """Writes one case folder and stamps fixed modes and mtimes on everything in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.times: dict[Path, int] = {}

    def reset(self) -> None:
        if self.root.is_symlink() or self.root.is_file():
            self.root.unlink()
        elif self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)

    def _claim(self, rel: str, when: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.times[path] = epoch(when)
        return path

    def write_bytes(self, rel: str, data: bytes, when: str) -> None:
        self._claim(rel, when).write_bytes(data)

    def write_text(self, rel: str, text: str, when: str, newline: str = "\n") -> None:
        self.write_bytes(rel, text.replace("\n", newline).encode("utf-8"), when)

    def mkdir(self, rel: str, when: str) -> None:
        self._claim(rel, when).mkdir()

    def symlink(self, rel: str, target: str, when: str) -> None:
        self._claim(rel, when).symlink_to(target)

    def finish(self) -> None:
        """Stamp files and links first, then folders deepest first (a folder without an
        explicit time gets the newest time found among its entries)."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_dir():
                    self._stamp_leaf(path)
        folders = [Path(dirpath) for dirpath, _, _ in os.walk(self.root)]
        for folder in sorted(folders, key=lambda p: (-len(p.parts), str(p))):
            when = self.times.get(folder)
            if when is None:
                when = max(child.lstat().st_mtime_ns // 10**9 for child in folder.iterdir())
            folder.chmod(DIR_MODE)
            os.utime(folder, (when, when))

    def _stamp_leaf(self, path: Path) -> None:
        if path not in self.times:
            raise RuntimeError(f"no timestamp registered for {path}")
        when = self.times[path]
        if path.is_symlink():
            os.utime(path, (when, when), follow_symlinks=False)
        else:
            path.chmod(FILE_MODE)
            os.utime(path, (when, when))


def toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def case_toml(fields: dict[str, str]) -> str:
    keys = ("case_number", "evidence_number", "examiner", "description", "notes", "location")
    return "".join(f"{key} = {toml_string(fields[key])}\n" for key in keys)


# --------------------------------------------------------------------------------------
# Binary formats: SQLite images, PNG, PDF
# --------------------------------------------------------------------------------------


def sqlite_image(schema: str, tables: dict[str, Sequence[Row]]) -> bytes:
    """Build a database in memory, VACUUM it and return its bytes."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("PRAGMA page_size = 4096")
        conn.executescript(schema)
        for table, rows in tables.items():
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608
        conn.commit()
        conn.execute("VACUUM")
        image = bytearray(conn.serialize())
    finally:
        conn.close()
    if struct.unpack(">H", image[16:18])[0] != SQLITE_PAGE_SIZE:
        raise RuntimeError("unexpected SQLite page size")
    image[96:100] = struct.pack(">I", SQLITE_VERSION_STAMP)
    return bytes(image)


class Canvas:
    """An RGB pixel buffer with just enough drawing to fake an app screenshot."""

    def __init__(self, width: int, height: int, background: Color) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, x1 = max(0, x), min(self.width, x + w)
        if x1 <= x0:
            return
        span = bytes(color) * (x1 - x0)
        for row in range(max(0, y), min(self.height, y + h)):
            start = (row * self.width + x0) * 3
            self.pixels[start : start + len(span)] = span

    def circle(self, cx: int, cy: int, r: int, color: Color) -> None:
        for dy in range(-r, r + 1):
            half = int((r * r - dy * dy) ** 0.5)
            self.rect(cx - half, cy + dy, 2 * half + 1, 1, color)

    def rounded(self, x: int, y: int, w: int, h: int, color: Color, *, radius: int) -> None:
        r = radius
        self.rect(x + r, y, w - 2 * r, h, color)
        self.rect(x, y + r, w, h - 2 * r, color)
        for cx, cy in ((x + r, y + r), (x + w - r - 1, y + r), (x + r, y + h - r - 1)):
            self.circle(cx, cy, r, color)
        self.circle(x + w - r - 1, y + h - r - 1, r, color)

    def text_lines(self, x: int, y: int, widths: Iterable[int], color: Color) -> None:
        """Grey bars standing in for lines of text."""
        for index, width in enumerate(widths):
            self.rect(x, y + index * 14, width, 7, color)

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[row * stride : (row + 1) * stride])
            for row in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(raw, 9))
            + png_chunk(b"IEND", b"")
        )


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def pdf_text(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("cp1252") + b")"


def pdf_document(lines: Sequence[tuple[str, int, int, str]], info: dict[str, str]) -> bytes:
    """One A4 page; lines are (font F1/F2, size, y, text). Text must fit cp1252."""
    content = b"".join(
        b"BT /%s %d Tf 72 %d Td %s Tj ET\n" % (font.encode(), size, y, pdf_text(text))
        for font, size, y, text in lines
    )
    info_items = b" ".join(b"/%s %s" % (k.encode(), pdf_text(v)) for k, v in info.items())
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n%sendstream" % (len(content), content),
        b"<< " + info_items + b" >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (
        len(objects) + 1,
        len(objects),
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


# --------------------------------------------------------------------------------------
# Invented people
# --------------------------------------------------------------------------------------

SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
    ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
    ("郭", "guo"), ("何", "he"), ("高", "gao"), ("林", "lin"), ("罗", "luo"),
    ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"),
    ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"),
    ("潘", "pan"), ("袁", "yuan"), ("蔡", "cai"), ("蒋", "jiang"), ("余", "yu"),
    ("于", "yu"), ("杜", "du"), ("叶", "ye"), ("程", "cheng"), ("魏", "wei"),
    ("苏", "su"), ("吕", "lv"), ("丁", "ding"), ("任", "ren"), ("沈", "shen"),
)  # fmt: skip
MALE_GIVEN = "伟强磊军勇杰涛明超刚平辉鹏飞浩宇然轩俊峰建国志文斌波鑫凯亮晨昊博"
FEMALE_GIVEN = "芳娜秀英敏静丽艳娟霞玲萍红婷雪琳欣怡涵梓诺佳颖慧倩璐晶燕瑶思雨"

REGIONS = (
    ("广东省", ("广州市", "深圳市", "东莞市", "佛山市", "珠海市"), 14),
    ("浙江省", ("杭州市", "宁波市", "温州市", "金华市"), 9),
    ("江苏省", ("南京市", "苏州市", "无锡市", "常州市"), 9),
    ("山东省", ("济南市", "青岛市", "烟台市", "潍坊市"), 8),
    ("河南省", ("郑州市", "洛阳市", "南阳市"), 7),
    ("四川省", ("成都市", "绵阳市", "宜宾市"), 7),
    ("湖北省", ("武汉市", "宜昌市", "襄阳市"), 6),
    ("湖南省", ("长沙市", "株洲市", "衡阳市"), 6),
    ("福建省", ("福州市", "厦门市", "泉州市"), 5),
    ("河北省", ("石家庄市", "保定市", "唐山市"), 5),
    ("上海市", ("上海市",), 5),
    ("北京市", ("北京市",), 5),
    ("安徽省", ("合肥市", "芜湖市"), 4),
    ("陕西省", ("西安市", "宝鸡市"), 4),
    ("辽宁省", ("沈阳市", "大连市"), 4),
    ("广西壮族自治区", ("南宁市", "桂林市"), 3),
)
DISTRICTS = ("新城区", "高新区", "经开区", "滨江区", "东城区", "西城区", "南湖区", "北园区")
STREETS = (
    "人民路",
    "建设路",
    "解放路",
    "中山路",
    "新华路",
    "和平路",
    "文化路",
    "长江路",
    "朝阳路",
    "青年路",
    "光明街",
    "幸福大道",
    "学府路",
    "工业大道",
    "花园街",
)
ESTATES = (
    "阳光花园",
    "锦绣华庭",
    "翠苑小区",
    "金色家园",
    "幸福里",
    "滨江一号",
    "橡树湾",
    "紫荆苑",
    "枫林绿洲",
    "御景湾",
    "星河湾",
    "世纪新城",
)


@dataclass(frozen=True)
class Person:
    name: str
    pinyin: str
    male: bool
    birth: date
    phone: str
    id_card: str
    email: str
    province: str
    city: str
    address: str

    @property
    def gender(self) -> str:
        return "男" if self.male else "女"


def fake_person(rng: random.Random) -> Person:
    surname, pinyin = rng.choice(SURNAMES)
    male = rng.random() < 0.52
    pool = MALE_GIVEN if male else FEMALE_GIVEN
    given = "".join(rng.choice(pool) for _ in range(rng.choice((1, 2, 2, 2))))
    birth = date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 44))
    province, cities, _ = rng.choices(REGIONS, weights=[r[2] for r in REGIONS])[0]
    city = rng.choice(cities)
    address = (
        f"{province}{city if city != province else ''}{rng.choice(DISTRICTS)}"
        f"{rng.choice(STREETS)}{rng.randint(1, 999)}号{rng.choice(ESTATES)}"
        f"{rng.randint(1, 30)}栋{rng.randint(1, 4)}单元{rng.randint(1, 33)}"
        f"{rng.randint(1, 4):02d}室"
    )
    local = rng.choice(
        (
            f"{pinyin}{rng.randint(1, 9999)}",
            f"{pinyin}_{birth:%y%m%d}",
            f"{rng.randint(10**7, 10**10)}",
        )
    )
    return Person(
        name=surname + given,
        pinyin=pinyin,
        male=male,
        birth=birth,
        phone=fake_phone(rng),
        id_card=fake_id_card(rng, birth, male),
        email=f"{local}@{rng.choice(('example.com', 'example.cn'))}",
        province=province,
        city=city,
        address=address,
    )


# --------------------------------------------------------------------------------------
# Case 1: leak-shop
# --------------------------------------------------------------------------------------

LEAK_ROOT = "seized/laptop-D"
LEAK_SOURCES = ("电商平台A-2025Q3", "快递驿站B-2025-08", "保险代理C-2025-06", "教育机构D-2025-09")
PRODUCTS = (
    ("手机壳 防摔款", "数码配件", 19, 59), ("无线蓝牙耳机", "数码配件", 89, 399),
    ("空气炸锅 5L", "家用电器", 199, 499), ("婴儿奶粉 900g", "母婴", 168, 358),
    ("纸尿裤 L码 64片", "母婴", 89, 159), ("深海鱼油软胶囊", "保健品", 98, 298),
    ("护肝片 60粒", "保健品", 128, 398), ("男士运动鞋", "服饰鞋包", 159, 699),
    ("羽绒服 中长款", "服饰鞋包", 399, 1299), ("保湿面霜 50g", "美妆个护", 129, 599),
    ("电动牙刷", "美妆个护", 99, 399), ("扫地机器人", "家用电器", 999, 2999),
    ("茶叶礼盒 500g", "食品酒水", 168, 888), ("白酒 53度 500ml", "食品酒水", 299, 1899),
    ("儿童学习平板", "教育", 699, 2299), ("四六级网课 年卡", "教育", 199, 999),
    ("汽车脚垫", "汽车用品", 129, 459), ("行车记录仪", "汽车用品", 199, 699),
)  # fmt: skip
PAYMENT = ("支付宝", "微信支付", "银行卡", "花呗分期", "货到付款")
ORDER_STATUS = ("已签收", "已签收", "已签收", "已签收", "已退款", "售后中", "已取消")

CUSTOMER_SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    gender TEXT,
    birth_date TEXT,
    phone TEXT NOT NULL,
    id_card TEXT,
    email TEXT,
    province TEXT,
    city TEXT,
    address TEXT,
    registered_at TEXT,
    source TEXT,
    vip_level INTEGER,
    order_count INTEGER,
    total_spent_cny REAL,
    last_order_at TEXT
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    order_no TEXT UNIQUE NOT NULL,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    product TEXT,
    category TEXT,
    quantity INTEGER,
    amount_cny REAL,
    paid_via TEXT,
    status TEXT,
    tracking_no TEXT,
    ordered_at TEXT
);
CREATE INDEX idx_customers_phone ON customers(phone);
CREATE INDEX idx_customers_province ON customers(province);
CREATE INDEX idx_orders_customer ON orders(customer_id);
"""


@dataclass(frozen=True)
class Order:
    order_no: str
    customer_id: int
    product: str
    category: str
    quantity: int
    amount: float
    paid_via: str
    status: str
    tracking_no: str
    ordered_at: int


def leak_customers(count: int = 2600) -> list[Person]:
    rng = make_rng(20260115)
    return [fake_person(rng) for _ in range(count)]


def leak_orders(customers: Sequence[Person]) -> list[Order]:
    rng = make_rng(20260116)
    orders: list[tuple[int, int]] = []
    for customer_id in range(1, len(customers) + 1):
        for _ in range(rng.choices((0, 1, 2, 3, 4, 5, 6), weights=(8, 20, 22, 18, 14, 10, 8))[0]):
            orders.append((customer_id, random_moment(rng, "2024-01-01 00:00", "2025-09-30 23:59")))
    orders.sort(key=lambda item: (item[1], item[0]))
    result = []
    for customer_id, moment in orders:
        product, category, low, high = rng.choice(PRODUCTS)
        quantity = rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
        result.append(
            Order(
                order_no=f"DD{cst(moment):%Y%m%d}{rng.randrange(10**8):08d}",
                customer_id=customer_id,
                product=product,
                category=category,
                quantity=quantity,
                amount=round(quantity * rng.uniform(low, high), 2),
                paid_via=rng.choice(PAYMENT),
                status=rng.choice(ORDER_STATUS),
                tracking_no=f"EX{rng.randrange(10**12):012d}",
                ordered_at=moment,
            )
        )
    return result


def customer_rows(customers: Sequence[Person], orders: Sequence[Order]) -> list[Row]:
    rng = make_rng(20260117)
    spent: dict[int, float] = {}
    count: dict[int, int] = {}
    last: dict[int, int] = {}
    for order in orders:
        if order.status not in ("已退款", "已取消"):
            spent[order.customer_id] = spent.get(order.customer_id, 0.0) + order.amount
        count[order.customer_id] = count.get(order.customer_id, 0) + 1
        last[order.customer_id] = max(last.get(order.customer_id, 0), order.ordered_at)
    rows: list[Row] = []
    for index, person in enumerate(customers, start=1):
        total = round(spent.get(index, 0.0), 2)
        rows.append(
            (
                index,
                person.name,
                person.gender,
                person.birth.isoformat(),
                person.phone,
                person.id_card,
                person.email,
                person.province,
                person.city,
                person.address,
                fmt(random_moment(rng, "2019-03-01 00:00", "2023-12-31 23:59")),
                rng.choice(LEAK_SOURCES),
                min(5, int(total // 1500)),
                count.get(index, 0),
                total,
                fmt(last[index]) if index in last else None,
            )
        )
    return rows


def order_rows(orders: Sequence[Order]) -> list[Row]:
    return [
        (
            index,
            o.order_no,
            o.customer_id,
            o.product,
            o.category,
            o.quantity,
            o.amount,
            o.paid_via,
            o.status,
            o.tracking_no,
            fmt(o.ordered_at),
        )
        for index, o in enumerate(orders, start=1)
    ]


def recent_products(orders: Sequence[Order], keep: int = 3) -> dict[int, list[str]]:
    """Newest products first, per customer id (orders are sorted by time)."""
    recent: dict[int, list[str]] = {}
    for order in reversed(orders):
        products = recent.setdefault(order.customer_id, [])
        if len(products) < keep:
            products.append(order.product)
    return recent


def customer_csv(rows: Sequence[Row], orders: Sequence[Order], provinces: Sequence[str]) -> str:
    """The seller's export for one buyer: customers of some provinces with purchase history."""
    recent = recent_products(orders)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        (
            "编号",
            "姓名",
            "性别",
            "出生日期",
            "手机号",
            "身份证号",
            "邮箱",
            "省份",
            "城市",
            "详细地址",
            "注册时间",
            "累计订单",
            "累计消费(元)",
            "最近购买",
        )
    )
    for row in rows:
        if row[7] in provinces:
            history = "、".join(recent.get(int(str(row[0])), []))
            writer.writerow((*row[:10], row[10], row[13], f"{row[14]:.2f}", history))
    return out.getvalue()


INDUSTRIES = (
    ("电商购物", "E-commerce", 800), ("快递物流", "Logistics", 600),
    ("贷款金融", "Loans", 1500), ("保险", "Insurance", 1200),
    ("教育培训", "Education", 700), ("房产业主", "Home owners", 1000),
    ("车主", "Car owners", 900), ("医美", "Cosmetic clinics", 1300),
)  # fmt: skip
FRESHNESS = (
    ("当月", "this month", 1.0),
    ("3个月内", "<3 months", 0.7),
    ("半年内", "<6 months", 0.4),
)
DEMO_WALLET = "TExampLeWa11etAddre55DoNotUse12345"


def price_list() -> str:
    rng = make_rng(20260103)
    lines = [
        "==================================================================",
        "  数据资源 · 2026年1月价目表        DATA PACKAGES · PRICE LIST 2026-01",
        "==================================================================",
        "  全部当日发货 / same-day delivery · 样本10条免费 / 10-row sample free",
        "  付款 Payment: USDT-TRC20 only, 先款后货 / pay first",
        f"  汇率 Rate: 1 USDT = {USDT_CNY:.1f} CNY",
        "",
        pad("编号 ID", 10)
        + pad("省份 Province", 18)
        + pad("行业 Industry", 26)
        + pad("条数 Rows", 11)
        + pad("新鲜度", 18)
        + pad("CNY", 9)
        + "USDT",
        "-" * 98,
    ]
    number = 1
    for province, _, _ in REGIONS:
        for cn, en, per_10k in rng.sample(INDUSTRIES, k=rng.randint(2, 4)):
            rows = rng.choice((5_000, 10_000, 20_000, 50_000, 100_000))
            fresh_cn, fresh_en, factor = rng.choice(FRESHNESS)
            cny = max(100, round(rows / 10_000 * per_10k * factor / 50) * 50)
            usdt = round(cny / USDT_CNY)
            lines.append(
                pad(f"P{number:03d}", 10)
                + pad(province, 18)
                + pad(f"{cn} {en}", 26)
                + pad(f"{rows:,}", 11)
                + pad(f"{fresh_cn} {fresh_en}", 18)
                + pad(f"¥{cny:,}", 9)
                + f"{usdt:,} U"
            )
            number += 1
    lines += [
        "-" * 98,
        "  全国打包 (含身份证+地址+订单) / nationwide bundle with ID + address + orders:",
        "      ¥38,000 / 5,300 U  — 仅限老客户 regulars only",
        "  定制筛选 (年龄/消费额/城市) 加价 30% / custom filters +30%",
        "",
        f"  收款地址 TRC20: {DEMO_WALLET}",
        "  不退不换，数据二次转卖拉黑 / no refunds, resellers get blacklisted",
        "",
    ]
    return "\n".join(lines)


SCAM_SMS = (
    "【快递通知】{name}您好，您的包裹因地址不详无法派送，"
    "请于24小时内点击 {url} 更新地址，逾期退回。",
    "【理赔中心】{name}您好，您购买的{product}存在质量问题，"
    "现为您办理三倍赔付{triple}元，请访问 {url} 领取。",
    "【退款通知】亲，您的订单{order}退款{amount}元待确认，请在 {url} 填写银行卡信息完成退款。",
    "【额度通知】{name}您已获得最高200000元备用金，年化3.6%，点击 {url} 立即提款，回T退订",
    "【ETC服务】您的ETC卡已失效，请尽快点击 {url} 重新认证，以免影响通行。",
    "【医保】您的医保卡账户异常将被冻结，请登录 {url} 核实身份。",
    "[Parcel] Dear {name}, your package is held at customs. Pay the 2.99 USD fee at {url} "
    "within 24h or it will be returned.",
    "Your refund of {amount} CNY for order {order} is pending. Verify your bank card at {url}",
    "Loan approved! Up to 50,000 CNY, no credit check, money in 5 minutes: {url}",
    "Your account will be suspended today. Confirm your identity now: {url}",
)
SCAM_HOSTS = (
    "kuaidi-help.example.cn",
    "refund-center.example.com",
    "claims-desk.example.cn",
    "quick-loan.example.com",
    "etc-renew.example.cn",
    "parcel-customs.example.com",
)
SMS_STATUS = ("DELIVERED", "DELIVERED", "DELIVERED", "DELIVERED", "FAILED", "TIMEOUT")


def sms_log(customers: Sequence[Person], orders: Sequence[Order]) -> str:
    rng = make_rng(20251231)
    senders = [fake_phone(rng) for _ in range(16)]
    moment = epoch("2025-12-01 08:30")
    lines = [
        "# SIMBOX gateway log — pool 03 (16 slots) — exported 2025-12-31 23:59",
        "# time | slot | sender | recipient | status | text",
    ]
    while moment < epoch("2025-12-31 23:00"):
        moment += rng.randint(15, 2400)
        if 1 <= cst(moment).hour < 8:
            continue  # the operator sleeps at night
        order = rng.choice(orders)
        victim = customers[order.customer_id - 1]
        slot = rng.randrange(len(senders))
        text = rng.choice(SCAM_SMS).format(
            name=victim.name,
            product=order.product,
            amount=f"{order.amount:.2f}",
            triple=f"{order.amount * 3:.2f}",
            order=order.order_no,
            url=f"https://{rng.choice(SCAM_HOSTS)}/{rng.randrange(16**8):08x}",
        )
        status = rng.choice(SMS_STATUS)
        lines.append(
            f"{cst(moment).isoformat()} | slot{slot + 1:02d} | {pretty_phone(senders[slot])} "
            f"| {pretty_phone(victim.phone)} | {status} | {text}"
        )
    return "\n".join(lines) + "\n"


LEAK_NOTES = """TODO  (2026-01)
==============
[x] 广东+浙江+江苏 电商库去重，导出给 @example_buyer_07
[ ] 尾款 800 USDT 还没到，催一下
[ ] 价目表更新：汇率按 7.2，保险库涨价
[ ] SIMBOX 03 号池第 7、12 卡槽老掉线 -> 换卡
[ ] 新短信模板：ETC / 医保 两套，转化率比快递高
[ ] shop.db 备份到U盘，笔记本上的删掉
[ ] 换 VPS，旧的那台清日志
[ ] 不要用自己的手机号注册任何东西!!!

buy list:
- 2 x 4G modem (USB)
- 50 SIM cards (不实名的)
"""


def chat_screenshot() -> bytes:
    """800x500 mock-up of a desktop chat client: seller and buyer negotiating."""
    rng = make_rng(20260108)
    c = Canvas(800, 500, (245, 245, 245))
    c.rect(0, 0, 800, 32, (46, 50, 56))  # window title bar
    for index, color in enumerate(((237, 106, 94), (245, 191, 79), (98, 197, 84))):
        c.circle(16 + index * 20, 16, 6, color)
    c.rect(0, 32, 56, 468, (40, 44, 52))  # left icon rail
    for index in range(5):
        c.rounded(14, 52 + index * 50, 28, 28, (90, 96, 108) if index else (7, 193, 96), radius=6)
    c.rect(56, 32, 200, 468, (233, 233, 235))  # contact list
    c.rounded(68, 42, 176, 26, (220, 220, 222), radius=5)  # search box
    avatar_colors = [
        (91, 155, 213),
        (237, 125, 49),
        (112, 173, 71),
        (255, 192, 0),
        (158, 72, 14),
        (68, 114, 196),
        (165, 165, 165),
    ]
    for index, color in enumerate(avatar_colors):
        top = 78 + index * 60
        if index == 1:
            c.rect(56, top, 200, 60, (201, 201, 203))  # selected conversation
        c.rounded(68, top + 10, 40, 40, color, radius=4)
        c.rect(118, top + 14, rng.randint(50, 90), 9, (60, 60, 60))
        c.rect(118, top + 34, rng.randint(70, 120), 7, (150, 150, 150))
        c.rect(214, top + 14, 28, 7, (170, 170, 170))
    c.rect(256, 32, 544, 50, (245, 245, 245))  # conversation header
    c.rect(276, 50, 110, 12, (40, 40, 40))
    c.rect(256, 82, 544, 1, (214, 214, 214))
    draw_chat_bubbles(c, rng)
    c.rect(256, 400, 544, 1, (214, 214, 214))  # input area
    c.rect(256, 401, 544, 99, (255, 255, 255))
    for index in range(5):
        c.rounded(272 + index * 30, 410, 20, 20, (170, 170, 170), radius=4)
    c.rect(272, 442, 300, 7, (200, 200, 200))
    c.rounded(706, 462, 78, 28, (7, 193, 96), radius=4)
    c.rect(730, 473, 30, 6, (255, 255, 255))
    return c.png()


def draw_chat_bubbles(c: Canvas, rng: random.Random) -> None:
    mine, theirs = (149, 236, 105), (255, 255, 255)
    y = 96
    layout = (("them", 2), ("me", 3), ("them", 1), ("me", 0))
    for side, lines in layout:
        left = side == "them"
        avatar_x = 270 if left else 746
        c.rounded(avatar_x, y, 34, 34, (237, 125, 49) if left else (91, 155, 213), radius=4)
        if lines == 0:  # a payment QR code sent by the seller
            draw_fake_qr(c, rng, 600, y, 5)
            y += 21 * 5 + 20
            continue
        widths = [rng.randint(120, 300) for _ in range(lines)]
        width = max(widths) + 24
        height = lines * 14 + 16
        x = avatar_x + 46 if left else avatar_x - 12 - width
        c.rounded(x, y, width, height, theirs if left else mine, radius=6)
        c.text_lines(x + 12, y + 11, widths, (70, 70, 70))
        y += max(height, 34) + 14


def draw_fake_qr(c: Canvas, rng: random.Random, x: int, y: int, cell: int) -> None:
    size = 21
    c.rect(x - cell, y - cell, (size + 2) * cell, (size + 2) * cell, (255, 255, 255))
    finder = {(r, q) for r in range(7) for q in range(7)}
    corners = ((0, 0), (0, size - 7), (size - 7, 0))
    for row in range(size):
        for col in range(size):
            corner = next(((a, b) for a, b in corners if (row - a, col - b) in finder), None)
            if corner is not None:
                r, q = row - corner[0], col - corner[1]
                dark = r in (0, 6) or q in (0, 6) or (2 <= r <= 4 and 2 <= q <= 4)
            else:
                dark = rng.random() < 0.5
            if dark:
                c.rect(x + col * cell, y + row * cell, cell, cell, (20, 20, 20))


EXPORT_PROVINCES = ("广东省", "浙江省", "江苏省")


def customer_export() -> str:
    """The seller's CSV export of three provinces: the file he sold, which turns up again,
    renamed, on the money-mule suspect's laptop (phone-dump)."""
    customers = leak_customers()
    orders = leak_orders(customers)
    return customer_csv(customer_rows(customers, orders), orders, EXPORT_PROVINCES)


def build_leak_shop(tree: CaseTree) -> None:
    customers = leak_customers()
    orders = leak_orders(customers)
    rows = customer_rows(customers, orders)
    database = sqlite_image(CUSTOMER_SCHEMA, {"customers": rows, "orders": order_rows(orders)})
    base = LEAK_ROOT
    tree.write_bytes(f"{base}/data/shop.db", database, "2025-12-28 23:41")
    tree.write_text(
        f"{base}/data/export/customers_gd_zj_js_20260106.csv", customer_export(), "2026-01-06 01:12"
    )
    tree.write_text(f"{base}/sales/price_list_2026-01.txt", price_list(), "2026-01-03 16:20")
    tree.write_text(
        f"{base}/sms/gateway_pool03_2025-12.log", sms_log(customers, orders), "2025-12-31 23:59"
    )
    tree.write_bytes(
        f"{base}/screenshots/chat_20260108_2231.png", chat_screenshot(), "2026-01-08 22:31"
    )
    tree.write_text(f"{base}/notes.txt", LEAK_NOTES, "2026-01-12 00:47")
    tree.write_text(
        "case.toml",
        case_toml(
            {
                "case_number": "EK-2026-0042",
                "evidence_number": "EK-2026-0042-E01",
                "examiner": "Lin Xiaoyu",
                "description": "Drive D: of the suspect's laptop: customer databases, price list, "
                "scam SMS gateway log and chat screenshot of a personal-data seller.",
                "notes": "Seized 2026-01-15 during search of the suspect's flat. Laptop was "
                "unlocked; logical copy of D:\\ only. All records are invented sample data.",
                "location": "Evidence room 2, Example City cybercrime unit (fictional)",
            }
        ),
        "2026-01-16 10:30",
    )


# --------------------------------------------------------------------------------------
# Case 2: phone-dump
# --------------------------------------------------------------------------------------

PHONE = "seized/phone/sdcard"
LAPTOP = "seized/laptop/Users/hao"
OWNER_PHONE = "17158203316"
MULE_WALLET = "TFakeWa11etForSamp1eDataJustTest98"
COLD_WALLET = "TCo1dStorageExamp1eWa11etAddress77"
BOSS_WALLET = "TBossWa11etExamp1eNotRea1Address99"


@dataclass(frozen=True)
class Contact:
    name: str
    nickname: str
    phone: str
    email: str
    note: str


def phone_contacts() -> list[Contact]:
    rng = make_rng(20260220)
    named = [
        Contact("陈国栋", "老陈", fake_phone(rng), "chen.guodong@example.cn", "别存真名"),
        Contact("林杰", "阿杰 卡商", fake_phone(rng), "", "收卡 300/张"),
        Contact("周丽华", "妈妈", fake_phone(rng), "", ""),
        Contact("周建军", "爸爸", fake_phone(rng), "", ""),
        Contact(
            "Claire Dubois",
            "Claire (propriétaire)",
            fake_phone(rng),
            "claire.dubois@example.com",
            "loyer Paris",
        ),
        Contact(
            "Дмитрий Орлов", "Дима OTC", fake_phone(rng), "d.orlov@example.com", "USDT наличные"
        ),
        Contact("王磊", "房东", fake_phone(rng), "", "押一付三"),
        Contact("示例银行客服", "银行", "17100009555", "", ""),
    ]
    others = [fake_person(rng) for _ in range(26)]
    return named + [Contact(p.name, "", p.phone, p.email, "") for p in others]


def vcard(contacts: Sequence[Contact]) -> str:
    cards = []
    for contact in contacts:
        lines = ["BEGIN:VCARD", "VERSION:3.0"]
        if contact.name[0].isascii() or " " in contact.name:
            given, _, family = contact.name.partition(" ")
        else:
            family, given = contact.name[0], contact.name[1:]
        lines += [f"N:{family};{given};;;", f"FN:{contact.name}"]
        if contact.nickname:
            lines.append(f"NICKNAME:{contact.nickname}")
        lines.append(f"TEL;TYPE=CELL:{pretty_phone(contact.phone)}")
        if contact.email:
            lines.append(f"EMAIL;TYPE=INTERNET:{contact.email}")
        if contact.note:
            lines.append(f"NOTE:{contact.note}")
        lines.append("END:VCARD")
        cards.append("\n".join(lines))
    return "\n".join(cards) + "\n"


CONTACTS_SCHEMA = """
CREATE TABLE contacts (
    _id INTEGER PRIMARY KEY,
    display_name TEXT,
    nickname TEXT,
    number TEXT,
    email TEXT,
    note TEXT,
    starred INTEGER,
    times_contacted INTEGER,
    last_time_contacted INTEGER
);
CREATE TABLE calls (
    _id INTEGER PRIMARY KEY,
    date INTEGER,
    number TEXT,
    duration INTEGER,
    type INTEGER,
    name TEXT
);
"""


def contacts_database(contacts: Sequence[Contact]) -> bytes:
    """The contacts/call-log database hidden as DCIM/IMG_2041.jpg."""
    rng = make_rng(20251214)
    calls: list[tuple[int, str, int, int, str]] = []  # (ms, number, duration, type, name)
    for _ in range(140):
        contact = contacts[min(int(rng.expovariate(0.25)), len(contacts) - 1)]
        moment = random_moment(rng, "2025-09-01 08:00", "2025-12-14 03:00")
        call_type = rng.choices((1, 2, 3), weights=(45, 45, 10))[0]  # in, out, missed
        duration = 0 if call_type == 3 else rng.randint(5, 900)
        calls.append((moment * 1000, contact.phone, duration, call_type, contact.name))
    calls.sort()
    stats: dict[str, tuple[int, int]] = {}
    for ms, number, *_ in calls:
        seen, _last = stats.get(number, (0, 0))
        stats[number] = (seen + 1, ms)
    call_rows: list[Row] = [(index, *call) for index, call in enumerate(calls, start=1)]
    rows: list[Row] = [
        (
            index,
            c.name,
            c.nickname or None,
            c.phone,
            c.email or None,
            c.note or None,
            1 if index <= 2 else 0,
            *stats.get(c.phone, (0, 0)),
        )
        for index, c in enumerate(contacts, start=1)
    ]
    return sqlite_image(CONTACTS_SCHEMA, {"contacts": rows, "calls": call_rows})


WECHAT_LOG = (
    ("2025-11-27 20:58:03", "老陈", "在吗"),
    ("2025-11-27 21:00:12", "我", "在"),
    ("2025-11-27 21:01:47", "老陈", "今晚三笔，49800、38000、26500，到账了截图给我"),
    ("2025-11-27 21:03:30", "我", "好的，还是老规矩？"),
    ("2025-11-27 21:04:02", "老陈", "到了马上换U，转到T开头那个地址，别转错"),
    ("2025-11-27 21:40:55", "我", "第一笔到了 49800"),
    ("2025-11-27 21:41:20", "我", "[图片]"),
    ("2025-11-27 21:42:03", "老陈", "收到，快点换"),
    ("2025-11-27 22:15:37", "我", "第二笔也到了，第三笔还没动静"),
    ("2025-11-27 22:16:10", "老陈", "别急，那边还在操作"),
    ("2025-11-27 23:05:44", "我", "三笔都到了，一共114300"),
    ("2025-11-27 23:14:58", "我", "已经全部换成U转过去了，15780 U"),
    ("2025-11-27 23:15:20", "我", "[图片]"),
    ("2025-11-27 23:16:02", "老陈", "好，你那份明天给你，还是按3个点"),
    ("2025-11-27 23:16:40", "老陈", "聊天记录记得删"),
    ("2025-12-02 10:12:09", "我", "尾号5521那张卡被冻结了，怎么办"),
    ("2025-12-02 10:20:31", "老陈", "先别碰那张，找阿杰再收两张新卡"),
    ("2025-12-02 10:21:05", "我", "好"),
    ("2026-01-09 19:47:12", "我", "Дима 说 USDT 现在 7.18 收"),
    ("2026-01-09 19:50:40", "老陈", "太低了，等等再说"),
    ("2026-02-17 19:02:44", "老陈", "最近风声紧，先停一段时间"),
    ("2026-02-17 19:05:10", "我", "明白"),
)


def wechat_export() -> str:
    lines = ["聊天记录：老陈 (wxid_example_chen01)", "导出时间：2026-02-18 22:10", "-" * 40]
    for stamp, who, text in WECHAT_LOG:
        lines += [f"{stamp}  {who}", text, ""]
    return "\n".join(lines)


def xml_attr(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", "&#10;")
    )


PERSONAL_SMS = (
    "到家了吗",
    "明天几点？",
    "好的收到",
    "[微笑] 周末一起吃饭",
    "钱转你了，查收一下",
    "在开会，晚点回",
    "OK",
    "记得带钥匙",
)
FRENCH_SMS = ("Merci, bien reçu !", "Le loyer est arrivé, merci.", "Je passe vendredi à 18h.")
RUSSIAN_SMS = ("Созвонимся завтра", "Курс сегодня 7,20", "Деньги получил, спасибо")


def personal_sms(contact: Contact) -> Sequence[str]:
    if contact.name.startswith("Claire"):
        return FRENCH_SMS
    if contact.name.startswith("Дмитрий"):
        return RUSSIAN_SMS
    return PERSONAL_SMS


def sms_backup(contacts: Sequence[Contact]) -> str:
    """An 'SMS Backup & Restore'-style XML export."""
    rng = make_rng(20260218)
    messages: list[tuple[int, str, int, str, str]] = []  # (ms, address, type, body, name)
    bank = "17100009555"
    balance = 12.35
    for stamp, amount in (
        ("2025-11-27 21:40:12", 49800.0),
        ("2025-11-27 22:14:51", 38000.0),
        ("2025-11-27 23:04:30", 26500.0),
    ):
        balance += amount
        body = (
            f"【示例银行】您尾号5521的账户{stamp[5:7]}月{stamp[8:10]}日{stamp[11:16]}"
            f"收入人民币{amount:,.2f}元，余额{balance:,.2f}元。"
        )
        messages.append((epoch(stamp) * 1000, bank, 1, body, "示例银行客服"))
    messages.append(
        (
            epoch("2025-12-02 09:58:00") * 1000,
            bank,
            1,
            "【示例银行】您尾号5521的账户因涉嫌异常交易已被冻结，请本人携带身份证到网点办理。",
            "示例银行客服",
        )
    )
    for _ in range(120):
        moment = random_moment(rng, "2025-09-01 07:00", "2026-02-18 01:50") * 1000
        roll = rng.random()
        if roll < 0.55:
            contact = rng.choice([c for c in contacts[:12] if c.nickname != "银行"])
            body = rng.choice(personal_sms(contact))
            messages.append((moment, contact.phone, rng.choice((1, 2)), body, contact.name))
        elif roll < 0.8:
            code = rng.randrange(10**6)
            body = f"【示例支付】验证码 {code:06d}，5分钟内有效，请勿泄露给他人。"
            messages.append((moment, "17100001234", 1, body, ""))
        else:
            url = f"https://{rng.choice(SCAM_HOSTS)}/{rng.randrange(16**8):08x}"
            body = rng.choice(SCAM_SMS).format(
                name="周浩",
                product="无线蓝牙耳机",
                amount="299.00",
                triple="897.00",
                order="DD2025091412345678",
                url=url,
            )
            messages.append((moment, fake_phone(rng), 1, body, ""))
    messages.sort()
    lines = [
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>",
        f'<smses count="{len(messages)}" backup_set="ek-sample" '
        f'backup_date="{epoch("2026-02-18 02:00") * 1000}" type="full">',
    ]
    for ms, address, kind, body, name in messages:
        lines.append(
            f'  <sms protocol="0" address="{xml_attr(pretty_phone(address))}" date="{ms}" '
            f'type="{kind}" read="1" status="-1" body="{xml_attr(body)}" '
            f'readable_date="{fmt(ms // 1000)}" contact_name="{xml_attr(name or "(Unknown)")}" />'
        )
    lines.append("</smses>")
    return "\n".join(lines) + "\n"


def transfer_screenshot() -> bytes:
    """360x780 mock-up of a wallet app 'transfer complete' screen."""
    c = Canvas(360, 780, (246, 247, 249))
    c.rect(0, 0, 360, 24, (30, 30, 30))  # status bar
    c.rect(8, 8, 30, 8, (230, 230, 230))
    c.rect(310, 8, 40, 8, (230, 230, 230))
    c.rect(0, 24, 360, 56, (38, 161, 123))  # app bar
    c.rect(16, 46, 14, 14, (255, 255, 255))
    c.rect(130, 46, 100, 12, (255, 255, 255))
    c.circle(180, 180, 54, (38, 161, 123))  # success badge with a tick
    for step in range(18):
        c.rect(150 + step, 176 + step, 8, 8, (255, 255, 255))
    for step in range(34):
        c.rect(166 + step, 193 - step, 8, 8, (255, 255, 255))
    c.rect(110, 262, 140, 14, (60, 60, 60))  # "Transfer complete"
    c.rect(90, 296, 180, 26, (20, 20, 20))  # amount
    c.rounded(16, 350, 328, 250, (255, 255, 255), radius=10)  # details card
    for index in range(6):
        top = 372 + index * 38
        c.rect(32, top, 70, 9, (150, 150, 150))
        c.rect(344 - 32 - 60 - index * 12, top, 60 + index * 12, 9, (60, 60, 60))
    c.rounded(16, 690, 328, 48, (38, 161, 123), radius=24)  # "Done" button
    c.rect(160, 710, 40, 9, (255, 255, 255))
    return c.png()


def receipt_pdf() -> bytes:
    lines = [
        ("F1", 22, 760, "Reçu de paiement"),
        ("F2", 11, 730, "Reçu n° 2025-118 — Paris, le 5 novembre 2025"),
        ("F2", 12, 690, "Je soussignée, Mme Claire Dubois, propriétaire du logement situé"),
        ("F2", 12, 672, "12 rue de l'Exemple, 75000 Paris (studio, 3e étage),"),
        ("F2", 12, 648, "déclare avoir reçu de M. Hao Zhou la somme de 1 250,00 € (mille deux"),
        ("F2", 12, 630, "cent cinquante euros) au titre du loyer et des charges de novembre 2025."),
        ("F2", 12, 600, "Mode de paiement : virement, référence EXEMPLE-8841."),
        ("F2", 12, 560, "Fait pour servir et valoir ce que de droit."),
        ("F1", 12, 520, "Claire Dubois"),
        ("F2", 9, 80, "Document fictif — données d'exemple pour evidence-kit."),
    ]
    info = {
        "Title": "Reçu de paiement",
        "Author": "Claire Dubois",
        "CreationDate": "D:20251105143000+01'00'",
    }
    return pdf_document(lines, info)


PHONE_NOTES = """购物 / 待办
- 明天去银行问冻结的事 (带身份证)
- 给妈妈转2000
- 找阿杰收两张新卡
- 房租 1250€ 给 Claire (已付，收据在电脑上)
- 换手机? 旧的恢复出厂
"""
PINNED = """重要!!!
钱包备份在红色笔记本 第12页，不要存手机
卡: 示例银行 尾号5521 (冻结) / 尾号0917 / 尾号3380
老陈的分成按 3 个点算，每周结
"""
SEED_HINT = "助记词 12 个，抄在红色笔记本第12页，不是这里。\nseed phrase: see red notebook, p.12\n"
OTC_RATES = """Курс USDT — обновлено 20.11.2025
Покупка: 7,18 CNY   Продажа: 7,25 CNY
Минимальная сумма: 5 000 USDT
Только через посредника, встреча в офисе. Наличные юани не принимаем.
Контакт: @example_otc_desk (Дима)
"""


def wallet_json() -> str:
    data = {
        "app": "com.example.wallet",
        "version": "4.2.1",
        "last_sync": "2026-02-18T23:10:07+08:00",
        "accounts": [
            {"chain": "TRON", "label": "收款", "address": MULE_WALLET, "token": "USDT"},
            {"chain": "TRON", "label": "cold", "address": COLD_WALLET, "token": "USDT"},
        ],
        "recent_transfers": [
            {
                "time": "2025-11-27T23:14:31+08:00",
                "from": MULE_WALLET,
                "to": BOSS_WALLET,
                "amount": "15780.00",
                "token": "USDT",
                "txid": f"{make_rng(7).randrange(16**64):064x}",
            },
        ],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def build_phone_dump(tree: CaseTree) -> None:
    contacts = phone_contacts()
    wallet = f"{PHONE}/Android/data/com.example.wallet"
    tree.mkdir(f"{PHONE}/Alarms", "2025-06-02 10:04")  # deliberately empty folder
    tree.write_bytes(
        f"{wallet}/cache/blob.bin",
        make_rng(3_145_728).randbytes(3 * 1024 * 1024),
        "2026-02-19 08:02",
    )
    tree.write_text(f"{wallet}/files/wallet.json", wallet_json(), "2026-02-18 23:10")
    tree.write_text(
        f"{wallet}/files/backup/2025/11/27/seed_hint.txt", SEED_HINT, "2025-11-27 23:40"
    )
    tree.write_bytes(f"{PHONE}/DCIM/.thumbnails/.nomedia", b"", "2025-06-02 10:05")
    tree.write_bytes(f"{PHONE}/DCIM/IMG_2041.jpg", contacts_database(contacts), "2025-12-14 03:12")
    tree.write_bytes(
        f"{PHONE}/DCIM/Screenshots/Screenshot_20251127-231502.png",
        transfer_screenshot(),
        "2025-11-27 23:15",
    )
    tree.write_text(f"{PHONE}/Documents/notes.txt", PHONE_NOTES, "2026-02-17 19:20")
    tree.write_text(
        f"{PHONE}/Documents/contacts.vcf", vcard(contacts), "2026-01-30 12:00", newline="\r\n"
    )
    tree.write_text(f"{PHONE}/Documents/📌重要.txt", PINNED, "2025-12-02 10:30")
    tree.symlink(f"{PHONE}/Download/latest.txt", "../Documents/notes.txt", "2026-02-17 19:21")
    tree.write_bytes(f"{PHONE}/Download/unfinished.crdownload", b"", "2026-02-19 22:58")
    tree.write_text(
        f"{PHONE}/Backup/SMS/sms-20260218.xml", sms_backup(contacts), "2026-02-18 02:00"
    )
    tree.write_text(f"{PHONE}/微信/聊天记录.txt", wechat_export(), "2026-02-18 22:10")
    tree.write_bytes(f"{LAPTOP}/Téléchargements/reçu.pdf", receipt_pdf(), "2025-11-05 21:31")
    tree.write_text(f"{LAPTOP}/Документы/курс_USDT.txt", OTC_RATES, "2025-11-20 18:05")
    tree.write_text(
        f"{LAPTOP}/Téléchargements/客户资料-广东浙江江苏.csv", customer_export(), "2026-01-09 20:47"
    )
    tree.write_text(
        "case.toml",
        case_toml(
            {
                "case_number": "EK-2026-0107",
                "evidence_number": "EK-2026-0107-E03",
                "examiner": "赵敏 (Zhao Min)",
                "description": "Logical dump of a money-mule suspect's Android phone (sdcard) "
                "and his laptop user folder.",
                "notes": 'Owner calls the second wallet "cold". Laptop profile copied from '
                "C:\\Users\\hao as-is. Alarms/ is empty on the device. "
                "All records are invented sample data.",
                "location": "Digital forensics lab, bench 3, Example City (fictional)",
            }
        ),
        "2026-02-21 09:00",
    )


# --------------------------------------------------------------------------------------


CASES: dict[str, Callable[[CaseTree], None]] = {
    "leak-shop": build_leak_shop,
    "phone-dump": build_phone_dump,
}


def main() -> None:
    for name, build in CASES.items():
        tree = CaseTree(HERE / name)
        tree.reset()
        build(tree)
        tree.finish()
        print(f"generated {tree.root}")


if __name__ == "__main__":
    main()
