"""Ingest: the currency codes an order may carry (SPEC §2.1 "ISO code or D365 name").

ISO 4217's alphabetic codes: those in use, plus those withdrawn since 2000 that an older D365
organisation may still have as a currency record (HRK, LTL, VEF…), so that an export of
historical orders reads. ``XTS`` (testing) and ``XXX`` (no currency) are left out: an order
cannot be billed in them. Any other three letters (``UDS``, ``YEN``) are a typo and
``INVALID_VALUE`` (R9) — a billing contract must never be made in a currency that does not
exist.
"""

from __future__ import annotations

ISO_4217_CODES: frozenset[str] = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR
MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG
XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
ADP AFA ATS AZM BEF BGL BYR CSD CYP DEM ESP EEK FIM FRF GHC GRD HRK IEP ITL LTL LUF LVL MGF MRO
MTL MZM NLG PTE ROL SDD SIT SKK SRG STD TMM TRL VEB VEF XFO XFU YUM ZMK ZWD ZWN ZWR
""".split())
