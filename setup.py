from setuptools import Extension, find_packages, setup

TEST_REQUIRES = [
    'pytest>=8',
    'pytest-timeout',
    'hypothesis',
    'zope.publisher',   # the seed procman config imports it before forking
    'psycopg[binary]>=3.1',
    'wheel',            # builds the third-party test distribution (tests/thirdparty_dist)
    'pyramid>=2',       # a Pyramid app mounted as a component's child (tests/process/test_author_pyramid.py)
    'PyYAML',           # parses the Kubernetes manifests of docs/deploy.md (tests/docs/test_deploy.py)
]

setup(
    name='peak_lite',
    version='0.1.0',
    description='A small PEAK-style component framework and pre-forking process manager',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='ZPL-2.1',
    python_requires='>=3.10',
    packages=find_packages(include=['peak_lite', 'peak_lite.*']),
    # The gateways' per-record, per-parameter and per-header loops, and a child's
    # scoreboard writes per request, compiled.  Optional: without a C compiler the
    # install goes on and the pure-Python code does the same work.
    ext_modules=[Extension('peak_lite.running.gateways._speedups',
                           ['peak_lite/running/gateways/_speedups.c'], optional=True),
                 Extension('peak_lite.running.procman._slotcore',
                           ['peak_lite/running/procman/_slotcore.c'], optional=True)],
    include_package_data=True,
    package_data={'peak_lite': ['*.ini', '**/*.xml', '**/*.ini']},
    install_requires=[
        'zope.interface>=6',
        'zope.component>=6',
        'transaction>=4',
        'ZConfig>=4',
        'httptools>=0.6',   # llhttp: the HTTP/1.1 request parser
        'setproctitle>=1.3',
    ],
    extras_require={
        'test': TEST_REQUIRES,
        'postgresql': ['psycopg[binary]>=3.1'],
    },
    entry_points={
        'console_scripts': [
            'peak = peak_lite.running.scripts:peak',
            'invoke = peak_lite.running.scripts:invoke',
        ],
        # The shortcuts of the `peak` script; other packages add their own.
        'peak_lite.commands': [
            'runIni = peak_lite.running.commands:IniInterpreter',
            'ZConfig = peak_lite.running.zconfig:ZConfigInterpreter',
            'EventDriven = peak_lite.running.commands:EventDriven',
            'help = peak_lite.running.commands:Help',
            'CGI = peak_lite.running.gateways:CGIInterpreter',
            'FastCGI = peak_lite.running.gateways:FastCGIInterpreter',
            'WSGI = peak_lite.running.gateways:WSGIInterpreter',
            'HTTP = peak_lite.running.gateways:HTTPInterpreter',
            'procman = peak_lite.running.procman:ProcessManager',
        ],
    },
)
