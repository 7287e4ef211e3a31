"""Parameter counts equal the official code's, measured in spec table 2.7, exactly."""
import json

import pytest

from agent import params

# Spec 2.7: preset -> (Atari 96x96x1 / 18 actions, Crafter 64x64x3 / 17, DMC vision / 6-d, DMC proprio 24-d / 6-d).
OFFICIAL = {
    "1m": (769_762, 687_875, 686_846, 640_867),
    "12m": (11_808_850, 10_498_259, 10_494_158, 9_738_019),
    "25m": (26_444_402, 23_495_475, 23_489_326, 21_782_947),
    "50m": (46_900_882, 41_658_259, 41_650_062, 38_612_003),
    "100m": (105_276_626, 93_480_531, 93_468_238, 86_622_499),
    "200m": (186_936_082, 165_965_075, 165_948_686, 153_769_507),
    "400m": (420_106_130, 372_920_979, 372_896_398, 345_473_059),
}
SETUPS = ("atari", "crafter", "dmc_vision", "dmc_proprio")


@pytest.mark.parametrize("size", OFFICIAL)
def test_total_counts_match_official(size):
    for setup, expected in zip(SETUPS, OFFICIAL[size]):
        obs, act = params.SETUPS[setup]
        assert params.count(size, obs, act)["total"] == expected, (size, setup)


def test_crafter_12m_module_split():
    modules = params.count("12m", *params.SETUPS["crafter"])["modules"]
    assert modules == dict(enc=220_416, dyn=5_982_464, dec=1_272_003, rew=721_407, con=656_129,
                           pol=792_337, val=853_503, slowval=853_503)


def test_rssm_closed_form():
    # Spec 2.7's closed form for D=2048, Hd=256, S*C=512, g=8, A=17, E=1024.
    D, Hd, SC, g, A, E = 2048, 256, 512, 8, 17, 1024
    rssm = (D * Hd + 2 * Hd) + (SC * Hd + 2 * Hd) + (A * Hd + 2 * Hd) \
        + (g * (D // g + 3 * Hd) * (D // g) + 2 * D) + (g * (D // g) * (3 * D // g) + 3 * D) \
        + ((D + E) * Hd + 2 * Hd) + (Hd * SC + SC) + (D * Hd + 2 * Hd) + (Hd * Hd + 2 * Hd) + (Hd * SC + SC)
    assert params.count("12m", *params.SETUPS["crafter"])["modules"]["dyn"] == rssm


def test_cli_json(capsys):
    params.main(["--size", "1m", "--setup", "dmc_proprio", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["total"] == 640_867
    assert set(result["modules"]) == {"enc", "dyn", "dec", "rew", "con", "pol", "val", "slowval"}


def test_cli_table(capsys):
    params.main(["--size", "12m", "--obs", "image:64x64x3", "--act", "discrete:17"])
    out = capsys.readouterr().out
    assert "10,498,259" in out and "dyn" in out


@pytest.mark.parametrize("argv, message", [
    (["--size", "13m"], "unknown size preset '13m'"),
    (["--obs", "image:65x64x3"], "multiple of 16"),
    (["--obs", "pixels:64"], "use image:HxWxC or vector:N"),
])
def test_cli_bad_input(argv, message, capsys):
    with pytest.raises(SystemExit):
        params.main(argv)
    assert message in capsys.readouterr().err
