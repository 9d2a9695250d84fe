# ruff: noqa: E501 - recorded program output keeps its long lines
"""Realistic ``iw`` output, written from iw's documented output format.

- ``IW_PHY_ATH9K``: a dual-band Atheros AR9380 (ath9k) as iw 5.19 prints it
  (``2412.0 MHz``, "no IR, radar detection"), regulatory domain DE: 2.4 GHz
  channels 12-13 usable, 14 disabled; 5 GHz 52-140 radar, 149+ disabled.
  Supports IBSS, mesh point and AP.
- ``IW_PHY_INTEL``: an Intel Wi-Fi 6 AX200 (iwlwifi) as the older iw 4.x
  prints it (``2412 MHz``, "passive scanning, no IBSS"): IBSS and AP, no
  mesh point; 5 GHz only passive except 36-48.
- ``IW_DEV``: both cards, one in IBSS on channel 5, one managed.
"""

IW_PHY_ATH9K = """\
Wiphy phy0
\twiphy index: 0
\tmax # scan SSIDs: 4
\tmax scan IEs length: 2257 bytes
\tmax # sched scan SSIDs: 0
\tmax # match sets: 0
\tRetry short limit: 7
\tRetry long limit: 4
\tCoverage class: 0 (up to 0m)
\tDevice supports RSN-IBSS.
\tDevice supports AP-side u-APSD.
\tSupported Ciphers:
\t\t* WEP40 (00-0f-ac:1)
\t\t* WEP104 (00-0f-ac:5)
\t\t* TKIP (00-0f-ac:2)
\t\t* CCMP-128 (00-0f-ac:4)
\t\t* CMAC (00-0f-ac:6)
\tAvailable Antennas: TX 0x7 RX 0x7
\tConfigured Antennas: TX 0x7 RX 0x7
\tSupported interface modes:
\t\t * IBSS
\t\t * managed
\t\t * AP
\t\t * AP/VLAN
\t\t * WDS
\t\t * monitor
\t\t * mesh point
\t\t * P2P-client
\t\t * P2P-GO
\tBand 1:
\t\tCapabilities: 0x11ef
\t\t\tRX LDPC
\t\t\tHT20/HT40
\t\t\tSM Power Save disabled
\t\t\tRX HT20 SGI
\t\t\tRX HT40 SGI
\t\t\tTX STBC
\t\t\tRX STBC 1-stream
\t\t\tMax AMSDU length: 3839 bytes
\t\t\tDSSS/CCK HT40
\t\tMaximum RX AMPDU length 65535 bytes (exponent: 0x003)
\t\tMinimum RX AMPDU time spacing: 8 usec (0x06)
\t\tHT TX/RX MCS rate indexes supported: 0-23
\t\tBitrates (non-HT):
\t\t\t* 1.0 Mbps
\t\t\t* 2.0 Mbps (short preamble supported)
\t\t\t* 5.5 Mbps (short preamble supported)
\t\t\t* 11.0 Mbps (short preamble supported)
\t\t\t* 6.0 Mbps
\t\t\t* 54.0 Mbps
\t\tFrequencies:
\t\t\t* 2412.0 MHz [1] (20.0 dBm)
\t\t\t* 2417.0 MHz [2] (20.0 dBm)
\t\t\t* 2422.0 MHz [3] (20.0 dBm)
\t\t\t* 2427.0 MHz [4] (20.0 dBm)
\t\t\t* 2432.0 MHz [5] (20.0 dBm)
\t\t\t* 2437.0 MHz [6] (20.0 dBm)
\t\t\t* 2442.0 MHz [7] (20.0 dBm)
\t\t\t* 2447.0 MHz [8] (20.0 dBm)
\t\t\t* 2452.0 MHz [9] (20.0 dBm)
\t\t\t* 2457.0 MHz [10] (20.0 dBm)
\t\t\t* 2462.0 MHz [11] (20.0 dBm)
\t\t\t* 2467.0 MHz [12] (20.0 dBm)
\t\t\t* 2472.0 MHz [13] (20.0 dBm)
\t\t\t* 2484.0 MHz [14] (disabled)
\tBand 2:
\t\tCapabilities: 0x11ef
\t\t\tRX LDPC
\t\t\tHT20/HT40
\t\t\tSM Power Save disabled
\t\t\tRX HT20 SGI
\t\t\tRX HT40 SGI
\t\t\tTX STBC
\t\t\tRX STBC 1-stream
\t\t\tMax AMSDU length: 3839 bytes
\t\t\tDSSS/CCK HT40
\t\tMaximum RX AMPDU length 65535 bytes (exponent: 0x003)
\t\tMinimum RX AMPDU time spacing: 8 usec (0x06)
\t\tHT TX/RX MCS rate indexes supported: 0-23
\t\tBitrates (non-HT):
\t\t\t* 6.0 Mbps
\t\t\t* 54.0 Mbps
\t\tFrequencies:
\t\t\t* 5180.0 MHz [36] (23.0 dBm)
\t\t\t* 5200.0 MHz [40] (23.0 dBm)
\t\t\t* 5220.0 MHz [44] (23.0 dBm)
\t\t\t* 5240.0 MHz [48] (23.0 dBm)
\t\t\t* 5260.0 MHz [52] (20.0 dBm) (no IR, radar detection)
\t\t\t* 5280.0 MHz [56] (20.0 dBm) (no IR, radar detection)
\t\t\t* 5300.0 MHz [60] (20.0 dBm) (no IR, radar detection)
\t\t\t* 5320.0 MHz [64] (20.0 dBm) (no IR, radar detection)
\t\t\t* 5500.0 MHz [100] (26.0 dBm) (no IR, radar detection)
\t\t\t* 5520.0 MHz [104] (26.0 dBm) (no IR, radar detection)
\t\t\t* 5700.0 MHz [140] (26.0 dBm) (no IR, radar detection)
\t\t\t* 5745.0 MHz [149] (disabled)
\t\t\t* 5765.0 MHz [153] (disabled)
\t\t\t* 5785.0 MHz [157] (disabled)
\t\t\t* 5805.0 MHz [161] (disabled)
\t\t\t* 5825.0 MHz [165] (disabled)
\tvalid interface combinations:
\t\t * #{ managed } <= 2048, #{ AP, mesh point } <= 8, #{ P2P-client, P2P-GO } <= 1, #{ IBSS } <= 1,
\t\t   total <= 2048, #channels <= 1, STA/AP BI must match, radar detect widths: { 20 MHz (no HT), 20 MHz, 40 MHz }

\tHT Capability overrides:
\t\t * MCS: ff ff ff ff ff ff ff ff ff ff
\t\t * maximum A-MSDU length
\t\t * supported channel width
\t\t * short GI for 40 MHz
\tSupported commands:
\t\t * new_interface
\t\t * set_interface
\t\t * new_key
\t\t * join_ibss
\t\t * join_mesh
\t\t * connect
\t\t * disconnect
\tsoftware interface modes (can always be added):
\t\t * AP/VLAN
\t\t * monitor
\tinterface combinations are not supported
\tDevice supports SAE with AUTHENTICATE command
"""

IW_PHY_INTEL = """\
Wiphy phy1
\tmax # scan SSIDs: 20
\tmax scan IEs length: 365 bytes
\tmax # sched scan SSIDs: 20
\tmax # match sets: 11
\tRetry short limit: 7
\tRetry long limit: 4
\tCoverage class: 0 (up to 0m)
\tDevice supports RSN-IBSS.
\tDevice supports AP-side u-APSD.
\tDevice supports T-DLS.
\tSupported Ciphers:
\t\t* WEP40 (00-0f-ac:1)
\t\t* CCMP-128 (00-0f-ac:4)
\t\t* GCMP-256 (00-0f-ac:9)
\tAvailable Antennas: TX 0 RX 0
\tSupported interface modes:
\t\t * IBSS
\t\t * managed
\t\t * AP
\t\t * AP/VLAN
\t\t * monitor
\t\t * P2P-client
\t\t * P2P-GO
\t\t * P2P-device
\tBand 1:
\t\tCapabilities: 0x1ff
\t\t\tRX LDPC
\t\t\tHT20/HT40
\t\tFrequencies:
\t\t\t* 2412 MHz [1] (22.0 dBm)
\t\t\t* 2417 MHz [2] (22.0 dBm)
\t\t\t* 2422 MHz [3] (22.0 dBm)
\t\t\t* 2427 MHz [4] (22.0 dBm)
\t\t\t* 2432 MHz [5] (22.0 dBm)
\t\t\t* 2437 MHz [6] (22.0 dBm)
\t\t\t* 2442 MHz [7] (22.0 dBm)
\t\t\t* 2447 MHz [8] (22.0 dBm)
\t\t\t* 2452 MHz [9] (22.0 dBm)
\t\t\t* 2457 MHz [10] (22.0 dBm)
\t\t\t* 2462 MHz [11] (22.0 dBm)
\t\t\t* 2467 MHz [12] (22.0 dBm) (passive scanning, no IBSS)
\t\t\t* 2472 MHz [13] (22.0 dBm) (passive scanning, no IBSS)
\tBand 2:
\t\tCapabilities: 0x1ff
\t\t\tRX LDPC
\t\tFrequencies:
\t\t\t* 5180 MHz [36] (22.0 dBm)
\t\t\t* 5200 MHz [40] (22.0 dBm)
\t\t\t* 5220 MHz [44] (22.0 dBm)
\t\t\t* 5240 MHz [48] (22.0 dBm)
\t\t\t* 5260 MHz [52] (22.0 dBm) (passive scanning, no IBSS, radar detection)
\t\t\t* 5745 MHz [149] (22.0 dBm) (passive scanning, no IBSS)
\t\t\t* 5825 MHz [165] (22.0 dBm) (passive scanning, no IBSS)
\tBand 4:
\t\tFrequencies:
\t\t\t* 5955 MHz [1] (disabled)
\t\t\t* 5975 MHz [5] (disabled)
\tSupported commands:
\t\t * new_interface
\t\t * join_ibss
\t\t * connect
\tsoftware interface modes (can always be added):
\t\t * AP/VLAN
\t\t * monitor
\tvalid interface combinations:
\t\t * #{ managed } <= 1, #{ AP, P2P-client, P2P-GO } <= 1, #{ P2P-device } <= 1,
\t\t   total <= 3, #channels <= 2
"""

IW_PHY_BOTH = IW_PHY_ATH9K + IW_PHY_INTEL

IW_DEV = """\
phy#1
\tUnnamed/non-netdev interface
\t\twdev 0x100000002
\t\taddr 7e:b2:7d:aa:bb:cd
\t\ttype P2P-device
\t\ttxpower 0.00 dBm
\tInterface wlp3s0
\t\tifindex 4
\t\twdev 0x100000001
\t\taddr 7c:b2:7d:aa:bb:cc
\t\ttype managed
\t\ttxpower 22.00 dBm
phy#0
\tInterface wlan0
\t\tifindex 3
\t\twdev 0x1
\t\taddr 00:0e:8e:12:34:56
\t\tssid commotionwireless.net
\t\ttype IBSS
\t\tchannel 5 (2432 MHz), width: 20 MHz (no HT), center1: 2432 MHz
\t\ttxpower 20.00 dBm
\t\tmulticast TXQ:
\t\t\tqsz-byt\tqsz-pkt\tflows\tdrops\tmarks\toverlmt\thashcol\ttx-bytes\ttx-packets
\t\t\t0\t0\t0\t0\t0\t0\t0\t0\t\t0
"""
