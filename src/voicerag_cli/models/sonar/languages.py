"""SONAR language codes: `--lang` to the speech encoder's code and the text encoder's source language.

The speech encoders are named by ISO 639-3 codes (`sonar_speech_encoder_eng`, `..._cmn`); the text
encoder takes NLLB/FLORES-200 codes (`eng_Latn`, `zho_Hans`). The order of `NLLB_LANGS` matters:
the tokenizer appends one control token per language in this order, so a language token's id is
its position here (the official `text_sonar_basic_encoder` asset card lists them in this order).
"""

from __future__ import annotations

from voicerag_cli.errors import ConfigError


def _codes(text: str) -> tuple[str, ...]:
    return tuple(text.split())


NLLB_LANGS: tuple[str, ...] = _codes(
    """
    ace_Arab ace_Latn acm_Arab acq_Arab aeb_Arab afr_Latn ajp_Arab aka_Latn amh_Ethi apc_Arab arb_Arab ars_Arab
    ary_Arab arz_Arab asm_Beng ast_Latn awa_Deva ayr_Latn azb_Arab azj_Latn bak_Cyrl bam_Latn ban_Latn bel_Cyrl
    bem_Latn ben_Beng bho_Deva bjn_Arab bjn_Latn bod_Tibt bos_Latn bug_Latn bul_Cyrl cat_Latn ceb_Latn ces_Latn
    cjk_Latn ckb_Arab crh_Latn cym_Latn dan_Latn deu_Latn dik_Latn dyu_Latn dzo_Tibt ell_Grek eng_Latn epo_Latn
    est_Latn eus_Latn ewe_Latn fao_Latn pes_Arab fij_Latn fin_Latn fon_Latn fra_Latn fur_Latn fuv_Latn gla_Latn
    gle_Latn glg_Latn grn_Latn guj_Gujr hat_Latn hau_Latn heb_Hebr hin_Deva hne_Deva hrv_Latn hun_Latn hye_Armn
    ibo_Latn ilo_Latn ind_Latn isl_Latn ita_Latn jav_Latn jpn_Jpan kab_Latn kac_Latn kam_Latn kan_Knda kas_Arab
    kas_Deva kat_Geor knc_Arab knc_Latn kaz_Cyrl kbp_Latn kea_Latn khm_Khmr kik_Latn kin_Latn kir_Cyrl kmb_Latn
    kon_Latn kor_Hang kmr_Latn lao_Laoo lvs_Latn lij_Latn lim_Latn lin_Latn lit_Latn lmo_Latn ltg_Latn ltz_Latn
    lua_Latn lug_Latn luo_Latn lus_Latn mag_Deva mai_Deva mal_Mlym mar_Deva min_Latn mkd_Cyrl plt_Latn mlt_Latn
    mni_Beng khk_Cyrl mos_Latn mri_Latn zsm_Latn mya_Mymr nld_Latn nno_Latn nob_Latn npi_Deva nso_Latn nus_Latn
    nya_Latn oci_Latn gaz_Latn ory_Orya pag_Latn pan_Guru pap_Latn pol_Latn por_Latn prs_Arab pbt_Arab quy_Latn
    ron_Latn run_Latn rus_Cyrl sag_Latn san_Deva sat_Beng scn_Latn shn_Mymr sin_Sinh slk_Latn slv_Latn smo_Latn
    sna_Latn snd_Arab som_Latn sot_Latn spa_Latn als_Latn srd_Latn srp_Cyrl ssw_Latn sun_Latn swe_Latn swh_Latn
    szl_Latn tam_Taml tat_Cyrl tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi taq_Latn taq_Tfng tpi_Latn tsn_Latn
    tso_Latn tuk_Latn tum_Latn tur_Latn twi_Latn tzm_Tfng uig_Arab ukr_Cyrl umb_Latn urd_Arab uzn_Latn vec_Latn
    vie_Latn war_Latn wol_Latn xho_Latn ydd_Hebr yor_Latn yue_Hant zho_Hans zho_Hant zul_Latn
    """
)

# Languages with a published SONAR speech encoder, by checkpoint generation (the file names differ).
SPEECH_LANGS_V3: tuple[str, ...] = _codes(
    "arb cat cym dan deu est fin fra ind ita kor nld pes por ron spa swh tgl tur uzn"
)
SPEECH_LANGS_V5: tuple[str, ...] = _codes(
    "asm bel ben bos bul ces cmn guj heb hin hrv jpn kan lao lit lvs mal mar mkd mlt npi ory pan pol rus slk "
    "slv snd srp tam tel tha ukr urd vie yue"
)
SPEECH_LANGS: tuple[str, ...] = ("eng", *SPEECH_LANGS_V3, *SPEECH_LANGS_V5)

# Speech codes whose text code is not "<code>_<script>" with the same three letters.
_SPEECH_TO_TEXT = {"cmn": "zho_Hans"}
_TEXT_TO_SPEECH = {"zho": "cmn"}


def text_lang(lang: str, known: tuple[str, ...] | list[str] = NLLB_LANGS) -> str:
    """`--lang` (eng, cmn, or an NLLB code such as zho_Hant) as the text encoder's source language."""
    lang = lang.strip()
    if "_" in lang:
        if lang in known:
            return lang
        raise ConfigError(f"unsupported SONAR text language {lang!r}; use an NLLB code such as eng_Latn or zho_Hans")
    if lang in _SPEECH_TO_TEXT and _SPEECH_TO_TEXT[lang] in known:
        return _SPEECH_TO_TEXT[lang]
    matches = [code for code in known if code.split("_")[0] == lang]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(f"SONAR language {lang!r} is written in several scripts; choose one of {', '.join(matches)}")
    raise ConfigError(f"unsupported SONAR language {lang!r}; use a code such as eng or cmn (speech) or eng_Latn (text)")


def speech_lang(lang: str) -> str:
    """`--lang` as the code naming a speech encoder card (`sonar_speech_encoder_<code>`)."""
    lang = lang.strip()
    if "_" not in lang:
        return lang
    base = lang.split("_")[0]
    return _TEXT_TO_SPEECH.get(base, base)
