#!/usr/bin/env python3
"""roomgen - write a synthetic virtual-tabletop room state as JSON.

    bench/roomgen.py [--size BYTES=65536] [--seed N=1] [--out FILE]

The document looks like what a tabletop client keeps for one room and what
slotgate's "room" keyspace caches: room metadata, a map grid (terrain per
cell, fog-of-war flag, elevation, walls; rooms carved out of rock and joined by
corridors, a stream), tokens (ids, names from a small vocabulary, positions, hit
points, conditions, owners), the initiative order, and a chat log (player
and GM messages, dice rolls such as "rolls 2d6+3 = 11").

The output is compact JSON (no whitespace) of exactly --size bytes: the chat
log grows until the next message would not fit, then the last message's
text is padded with words (and finally letters) to the exact size. The same
--seed always gives the same bytes (random.Random with a fixed seed;
Python 3 standard library only). Sizes below 8192 bytes are refused: the
fixed parts (five heroes, an 8 x 6 grid) need about 4 KiB.
"""
import argparse
import json
import random
import sys

TERRAIN = ["stone", "grass", "dirt", "water", "sand", "wood", "lava", "snow"]
NAMES = ["Goblin", "Orc", "Skeleton", "Zombie", "Wolf", "Kobold", "Bandit", "Cultist",
         "Giant Rat", "Ogre", "Hobgoblin", "Gnoll", "Dire Wolf", "Ghoul", "Imp"]
HEROES = [("Aria", "Elf Ranger"), ("Borin", "Dwarf Cleric"), ("Cass", "Human Rogue"),
          ("Dorn", "Half-Orc Fighter"), ("Elowen", "Gnome Wizard")]
PLAYERS = ["alex", "sam", "jordan", "riley", "casey"]
CONDITIONS = ["poisoned", "prone", "stunned", "blinded", "frightened", "grappled",
              "restrained", "invisible", "concentrating", "blessed"]
DICE = [(1, 20), (1, 20), (1, 20), (2, 6), (1, 8), (1, 6), (3, 6), (1, 10), (1, 12), (4, 6)]
WORDS = ("the a door goblin torch we should check left right corridor trap careful "
         "I move to attack cast spell shield heal potion gold chest key behind wall "
         "look listen north south east west run hide wait ready my turn yes no maybe "
         "again damage hits misses that was close nice roll sneak open locked stairs "
         "down up dark light smell noise water bridge rope climb jump help").split()
SENTENCES = [
    "I check the door for traps.", "Can I roll perception?", "Nice roll!",
    "I move behind the pillar.", "Does the goblin see me?", "I cast Bless on the party.",
    "Let's take a short rest.", "Who has the torch?", "I drink a healing potion.",
    "The bridge looks unstable.", "I attack the nearest orc.", "Ready action: shoot if it moves.",
    "How far is the stairway?", "I search the chest.", "Brb, two minutes.",
    "That was close.", "I hold my turn.", "Does the water look deep?",
]


def hexid(rng, n=16):
    return "%0*x" % (n, rng.getrandbits(4 * n))


def make_grid(rng, w, h):
    """Cells row-major: [terrain, fog, elevation, wall] with rooms carved
    into stone and joined by corridors, so terrain is spatially coherent the
    way a drawn dungeon map is."""
    terrain = [[0] * w for _ in range(h)]
    wall = [[1] * w for _ in range(h)]
    rooms = []
    for _ in range(rng.randint(5, 8)):
        rw, rh = rng.randint(2, min(10, w // 3)), rng.randint(2, min(8, h // 3))
        x0, y0 = rng.randint(1, w - rw - 1), rng.randint(1, h - rh - 1)
        t = rng.choice(TERRAIN[1:6])
        for y in range(y0, y0 + rh):
            for x in range(x0, x0 + rw):
                terrain[y][x] = TERRAIN.index(t)
                wall[y][x] = 0
        rooms.append((x0 + rw // 2, y0 + rh // 2))
    for (ax, ay), (bx, by) in zip(rooms, rooms[1:]):
        x, y = ax, ay
        while x != bx:
            wall[y][x] = 0
            x += 1 if bx > x else -1
        while y != by:
            wall[y][x] = 0
            y += 1 if by > y else -1
    # A stream across the map.
    y = rng.randint(2, h - 3)
    for x in range(w):
        terrain[y][x] = TERRAIN.index("water")
        wall[y][x] = 0
        y = min(h - 2, max(1, y + rng.choice([-1, 0, 0, 1])))
    px, py = rooms[0]
    cells = []
    for y in range(h):
        row = []
        for x in range(w):
            fog = 0 if abs(x - px) + abs(y - py) < 12 else 1
            elev = 0 if terrain[y][x] != TERRAIN.index("stone") else rng.choice([0, 0, 5])
            cell = {"t": TERRAIN[terrain[y][x]], "f": fog, "e": elev}
            if wall[y][x]:
                cell["w"] = 1
            row.append(cell)
        cells.append(row)
    return cells, rooms


def make_tokens(rng, rooms, w, h, n_npc):
    tokens = []
    for i, (name, cls) in enumerate(HEROES):
        x, y = rooms[0]
        hp = rng.randint(24, 58)
        tokens.append({
            "id": hexid(rng), "name": name, "kind": "pc", "class": cls,
            "owner": PLAYERS[i], "x": x + i % 3, "y": y + i // 3, "size": 1,
            "hp": {"cur": rng.randint(hp // 3, hp), "max": hp, "temp": rng.choice([0, 0, 5])},
            "ac": rng.randint(12, 19), "speed": 30,
            "conditions": rng.sample(CONDITIONS, rng.choice([0, 0, 1, 2])),
            "img": "tokens/pc/%s.webp" % name.lower(), "vision": {"dark": 60, "light": 30},
        })
    counts = {}
    for _ in range(n_npc):
        base = rng.choice(NAMES)
        counts[base] = counts.get(base, 0) + 1
        rx, ry = rng.choice(rooms[1:])
        hp = rng.randint(5, 60)
        tokens.append({
            "id": hexid(rng), "name": "%s %d" % (base, counts[base]), "kind": "npc",
            "owner": "gm", "x": max(0, min(w - 1, rx + rng.randint(-3, 3))),
            "y": max(0, min(h - 1, ry + rng.randint(-2, 2))), "size": 2 if base == "Ogre" else 1,
            "hp": {"cur": rng.randint(0, hp), "max": hp, "temp": 0},
            "ac": rng.randint(10, 16), "speed": rng.choice([30, 30, 40, 50]),
            "conditions": rng.sample(CONDITIONS, rng.choice([0, 0, 0, 1])),
            "img": "tokens/monsters/%s.webp" % base.lower().replace(" ", "-"),
            "hidden": rng.random() < 0.3,
        })
    return tokens


def roll_text(rng):
    n, d = rng.choice(DICE)
    mod = rng.choice([0, 0, 1, 2, 3, 4, 5, -1])
    rolls = [rng.randint(1, d) for _ in range(n)]
    expr = "%dd%d" % (n, d) + ("%+d" % mod if mod else "")
    what = rng.choice(["", " (attack)", " (damage)", " (perception)", " (stealth)",
                       " (initiative)", " (saving throw)"])
    return "rolls %s = %d%s" % (expr, sum(rolls) + mod, what), rolls


def chat_message(rng, ts, tokens):
    speaker = rng.randrange(len(HEROES) + 1)
    who = "GM" if speaker == len(HEROES) else HEROES[speaker][0]
    user = "gm" if speaker == len(HEROES) else PLAYERS[speaker]
    msg = {"id": hexid(rng, 12), "ts": ts, "user": user, "from": who}
    r = rng.random()
    if r < 0.45:
        text, rolls = roll_text(rng)
        msg.update(type="roll", text=text, dice=rolls)
    elif r < 0.75:
        msg.update(type="text", text=rng.choice(SENTENCES))
    elif r < 0.9:
        msg.update(type="text",
                   text=" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))))
    else:
        tok = rng.choice(tokens)
        msg.update(type="emote", text="%s moves %s to (%d, %d)" %
                   (who, tok["name"], tok["x"], tok["y"]))
    return msg


def dump(doc):
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True)


def generate(size, seed):
    rng = random.Random(seed)
    # About 35 % of the document is the map (~30 bytes a cell, 4:3) and
    # one NPC token per 3 KiB; at 64 KiB: 32 x 24 cells, about 22 NPCs.
    w = max(8, round((size * 0.35 / 30 * 4 / 3) ** 0.5))
    h = max(6, w * 3 // 4)
    cells, rooms = make_grid(rng, w, h)
    n_npc = max(2, round(size / 3072 * rng.uniform(0.85, 1.2)))
    tokens = make_tokens(rng, rooms, w, h, n_npc)
    order = sorted(tokens, key=lambda t: -rng.randint(1, 25))
    initiative = {
        "round": rng.randint(1, 9), "turn": rng.randrange(len(order)),
        "order": [{"tokenId": t["id"], "name": t["name"], "init": rng.randint(1, 25)}
                  for t in order],
    }
    t0 = 1700000000000 + rng.randrange(10 ** 9)
    doc = {
        "roomId": hexid(rng, 24), "name": "The Sunken Crypt", "system": "dnd5e",
        "rev": rng.randint(100, 5000), "updatedAt": t0, "gm": "gm",
        "players": [{"user": p, "character": c[0]} for p, c in zip(PLAYERS, HEROES)],
        "map": {"w": w, "h": h, "cellPx": 70, "background": "maps/crypt-level-1.webp",
                "cells": cells},
        "tokens": tokens, "initiative": initiative, "chat": [],
    }
    base = len(dump(doc))
    if base + 200 > size:
        raise SystemExit("roomgen: --size %d too small (fixed part is %d bytes)" % (size, base))
    # Grow the chat log; each message costs its JSON plus a comma.
    used, ts = base, t0 - 3600 * 1000
    while True:
        ts += rng.randint(2000, 40000)
        m = chat_message(rng, ts, tokens)
        cost = len(dump(m)) + (1 if doc["chat"] else 0)
        if used + cost > size - 40:
            break
        doc["chat"].append(m)
        used += cost
    # Pad the last message's text to the exact size.
    last = doc["chat"][-1]
    while True:
        gap = size - len(dump(doc))
        if gap <= 0:
            break
        word = rng.choice(WORDS)
        last["text"] += (" " + word) if gap > len(word) + 1 else "s" * gap
    out = dump(doc)
    assert len(out) == size, (len(out), size)
    return out


def main():
    ap = argparse.ArgumentParser(description="Write a virtual-tabletop room state as JSON.")
    ap.add_argument("--size", type=int, default=65536, help="output size in bytes (default 65536)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--out", default="-", help="output file (default stdout)")
    a = ap.parse_args()
    if a.size < 8192:
        ap.error("--size must be at least 8192")
    text = generate(a.size, a.seed)
    if a.out == "-":
        sys.stdout.write(text)
    else:
        with open(a.out, "w", encoding="ascii") as f:
            f.write(text)


if __name__ == "__main__":
    main()
